"""Gerencianet over mTLS: a test CA, a server certificate and a client certificate."""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from gerencianet.exceptions import UnauthorizedError

from gateways.simulators import MTLSSettings, SimulatorServer
from tests.gateways.simulators.conftest import cob_body, gerencianet_sdk, point_gerencianet_at

TXID = "Mtls0123456789abcdefABCDEF01234"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_pem: Path  # certificate and unencrypted key in one file, as the SDK wants
    stranger_pem: Path  # a client certificate from another CA


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    ca_key, stranger_ca_key = _new_key(), _new_key()
    ca = _certificate("PayWave test CA", ca_key, _name("PayWave test CA"), ca_key, ca=True)
    server_key, client_key, stranger_key = _new_key(), _new_key(), _new_key()
    server = _certificate("127.0.0.1", server_key, ca.subject, ca_key, server=True)
    client = _certificate("paywave-client", client_key, ca.subject, ca_key)
    stranger = _certificate("stranger", stranger_key, _name("Other CA"), stranger_ca_key)
    pem = serialization.Encoding.PEM
    files = Certificates(
        ca=tmp_path / "ca.pem",
        server_cert=tmp_path / "server.pem",
        server_key=tmp_path / "server-key.pem",
        client_pem=tmp_path / "client.pem",
        stranger_pem=tmp_path / "stranger.pem",
    )
    files.ca.write_bytes(ca.public_bytes(pem))
    files.server_cert.write_bytes(server.public_bytes(pem))
    files.server_key.write_bytes(_key_pem(server_key))
    files.client_pem.write_bytes(client.public_bytes(pem) + _key_pem(client_key))
    files.stranger_pem.write_bytes(stranger.public_bytes(pem) + _key_pem(stranger_key))
    return files


@pytest.fixture
def mtls_sim(certificates: Certificates) -> SimulatorServer:
    settings = MTLSSettings(
        port=0,
        cert_file=str(certificates.server_cert),
        key_file=str(certificates.server_key),
        client_ca_file=str(certificates.ca),
    )
    with SimulatorServer("127.0.0.1", 0, mtls=settings) as server:
        yield server


def test_the_sdk_with_a_client_certificate_gets_through(
    mtls_sim: SimulatorServer, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert mtls_sim.mtls_base_url is not None
    point_gerencianet_at(monkeypatch, mtls_sim.mtls_base_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))
    sdk = gerencianet_sdk(certificate=str(certificates.client_pem))

    cob = sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())

    assert cob["status"] == "ATIVA"
    assert sdk.pix_detail_charge(params={"txid": TXID})["txid"] == TXID
    # Same state on both listeners.
    charges = requests.get(mtls_sim.base_url + "/_sim/charges", timeout=5).json()
    assert [c["id"] for c in charges] == [TXID]


def test_a_client_without_a_certificate_is_refused(
    mtls_sim: SimulatorServer, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert mtls_sim.mtls_base_url is not None
    point_gerencianet_at(monkeypatch, mtls_sim.mtls_base_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(mtls_sim.mtls_base_url + "/_sim/health", timeout=5)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(
            mtls_sim.mtls_base_url + "/_sim/health",
            cert=str(certificates.stranger_pem),
            timeout=5,
        )
    with pytest.raises(requests.exceptions.ConnectionError):
        gerencianet_sdk().pix_detail_charge(params={"txid": TXID})


def test_wrong_client_secret_over_mtls_is_401(
    mtls_sim: SimulatorServer, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert mtls_sim.mtls_base_url is not None
    point_gerencianet_at(monkeypatch, mtls_sim.mtls_base_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificates.ca))
    sdk = gerencianet_sdk(certificate=str(certificates.client_pem), client_secret="wrong")

    with pytest.raises(UnauthorizedError):
        sdk.pix_detail_charge(params={"txid": TXID})


def test_the_plain_port_still_serves_the_sandbox(
    mtls_sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_gerencianet_at(monkeypatch, mtls_sim.base_url)

    cob = gerencianet_sdk().pix_create_charge(params={"txid": TXID}, body=cob_body())

    assert cob["status"] == "ATIVA"
