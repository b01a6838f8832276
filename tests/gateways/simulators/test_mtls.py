"""Gerencianet over mTLS: a test CA, a server certificate and a client certificate."""

from pathlib import Path

import pytest
import requests
from gerencianet.exceptions import UnauthorizedError

from gateways.simulators import MTLSSettings, SimulatorServer
from tests.gateways.certificates import Certificates, make_certificates
from tests.gateways.simulators.conftest import cob_body, gerencianet_sdk, point_gerencianet_at

TXID = "Mtls0123456789abcdefABCDEF01234"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


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


def test_a_refused_client_reads_the_tls_alert_not_a_reset(
    mtls_sim: SimulatorServer, certificates: Certificates
) -> None:
    """The server drains what the client already sent before closing, so the alert
    arrives every time (a reset would overtake it and look like a network failure)."""
    assert mtls_sim.mtls_base_url is not None
    for _ in range(10):
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_REQUIRED"):
            requests.post(
                mtls_sim.mtls_base_url + "/gerencianet/oauth/token",
                json={"grant_type": "client_credentials"},
                verify=str(certificates.ca),
                timeout=5,
            )


def test_tls_without_client_certificates_when_no_client_ca_is_given(
    certificates: Certificates,
) -> None:
    settings = MTLSSettings(
        port=0,
        cert_file=str(certificates.server_cert),
        key_file=str(certificates.server_key),
        client_ca_file=None,
    )
    with SimulatorServer("127.0.0.1", 0, mtls=settings) as server:
        assert server.mtls_base_url is not None
        answer = requests.get(
            server.mtls_base_url + "/_sim/health", verify=str(certificates.ca), timeout=5
        )

    assert answer.json() == {"ok": True}
