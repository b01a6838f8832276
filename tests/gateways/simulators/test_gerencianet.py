"""The Gerencianet/Efí PIX simulator through the real gerencianet SDK (plain HTTP, sandbox)."""

import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from gerencianet import Gerencianet
from gerencianet.exceptions import UnauthorizedError

from gateways.pix.brcode import parse
from gateways.simulators import SimulatorServer
from tests.gateways.simulators.conftest import CallbackReceiver, cob_body, gerencianet_sdk

TXID = "PayWave0123456789abcdefABCDEF01"


def test_oauth_refuses_wrong_credentials(gn_sdk: Gerencianet) -> None:
    with pytest.raises(UnauthorizedError):
        gerencianet_sdk(client_secret="wrong").pix_detail_charge(params={"txid": TXID})


def test_create_get_and_cancel_a_cob(gn_sdk: Gerencianet, control: httpx.Client) -> None:
    cob = gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())

    assert cob["txid"] == TXID
    assert (cob["status"], cob["revisao"]) == ("ATIVA", 0)
    assert cob["valor"] == {"original": "12.34"}
    assert cob["calendario"]["expiracao"] == 3600
    assert cob["calendario"]["criacao"].endswith("Z")
    assert cob["loc"]["tipoCob"] == "cob"
    assert cob["location"] == cob["loc"]["location"]
    code = parse(cob["pixCopiaECola"])
    assert (code.amount, code.url) == (1234, cob["location"])
    assert gn_sdk.pix_detail_charge(params={"txid": TXID}) == cob

    removed = gn_sdk.pix_update_charge(
        params={"txid": TXID}, body={"status": "REMOVIDA_PELO_USUARIO_RECEBEDOR"}
    )

    assert (removed["status"], removed["revisao"]) == ("REMOVIDA_PELO_USUARIO_RECEBEDOR", 1)
    [record] = control.get("/charges", params={"gateway": "gerencianet"}).json()
    assert {k: record[k] for k in ("id", "idempotency_key", "reference", "amount", "status")} == {
        "id": TXID,
        "idempotency_key": TXID,
        "reference": "pw_gn",
        "amount": 1234,
        "status": "REMOVIDA_PELO_USUARIO_RECEBEDOR",
    }


def test_reference_falls_back_to_the_txid(gn_sdk: Gerencianet, control: httpx.Client) -> None:
    body = cob_body()
    del body["infoAdicionais"]
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=body)

    assert control.get("/charges").json()[0]["reference"] == TXID


def test_put_is_idempotent_by_txid(gn_sdk: Gerencianet, control: httpx.Client) -> None:
    first = gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())
    second = gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())
    other = gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body(amount="99.00"))

    assert second == first
    assert other["type"].endswith("/CobOperacaoInvalida")
    assert len(control.get("/charges").json()) == 1


def test_problem_json_errors(sim: SimulatorServer, gn_sdk: Gerencianet) -> None:
    bad_txid = gn_sdk.pix_create_charge(params={"txid": "short"}, body=cob_body())
    bad_amount = gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body(amount="12.3"))
    missing = gn_sdk.pix_detail_charge(params={"txid": TXID})
    unauthenticated = httpx.get(f"{sim.base_url}/gerencianet/v2/cob/{TXID}")

    assert bad_txid["status"] == 400
    assert bad_txid["violacoes"][0]["propriedade"] == "txid"
    assert bad_amount["violacoes"][0]["propriedade"] == "valor.original"
    assert set(missing) == {"type", "title", "status", "detail", "violacoes"}
    assert missing["status"] == 404
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == "application/problem+json"


def test_qrcode_of_a_location(gn_sdk: Gerencianet) -> None:
    cob = gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())

    qrcode = gn_sdk.pix_generate_QRCode(params={"id": cob["loc"]["id"]})

    assert qrcode["qrcode"] == cob["pixCopiaECola"]
    prefix = "data:image/png;base64,"
    assert qrcode["imagemQrcode"].startswith(prefix)
    assert base64.b64decode(qrcode["imagemQrcode"][len(prefix) :]).startswith(b"\x89PNG")


def test_list_cobs_for_a_health_check(gn_sdk: Gerencianet) -> None:
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())
    now = datetime.now(UTC)
    window = {
        "inicio": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "fim": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    listed = gn_sdk.pix_list_charges(params=window)
    empty = gn_sdk.pix_list_charges(params={**window, "fim": window["inicio"]})

    assert [cob["txid"] for cob in listed["cobs"]] == [TXID]
    assert listed["parametros"]["paginacao"]["quantidadeTotalDeItens"] == 1
    assert empty["cobs"] == []


def test_pay_posts_to_the_registered_webhook_url_plus_pix(
    gn_sdk: Gerencianet, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    registered = gn_sdk.pix_config_webhook(
        params={"chave": "pix@paywave.example"},
        body={"webhookUrl": receiver.url + "/callbacks/gn?hmac=s3cret&ignorar="},
    )
    assert registered["webhookUrl"].endswith("ignorar=")
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())

    answer = control.post(f"/pix/{TXID}/pay").json()

    assert answer["callback"]["delivered"] is True
    [notification] = receiver.requests
    # Efí appends "/pix" to the URL's text: it lands in `ignorar`, `hmac` stays intact.
    assert notification.path == "/callbacks/gn"
    assert notification.query == {"hmac": ["s3cret"], "ignorar": ["/pix"]}
    [pix] = notification.json()["pix"]
    assert pix["txid"] == TXID
    assert pix["valor"] == "12.34"
    assert pix["chave"] == "pix@paywave.example"
    assert len(pix["endToEndId"]) == 32
    assert pix["endToEndId"].startswith("E09089356")
    cob = gn_sdk.pix_detail_charge(params={"txid": TXID})
    assert cob["status"] == "CONCLUIDA"
    assert cob["pix"][0]["endToEndId"] == pix["endToEndId"]
    assert control.get("/charges").json()[0]["status"] == "CONCLUIDA"
    assert control.post(f"/pix/{TXID}/pay").status_code == 409


def test_without_a_query_pix_is_a_path_segment(
    gn_sdk: Gerencianet, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/webhook", "secret": ""})
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())

    control.post(f"/pix/{TXID}/pay")

    assert receiver.requests[0].path == "/webhook/pix"


def test_control_target_with_a_secret_uses_efis_hmac_form(
    gn_sdk: Gerencianet, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/cb", "secret": "gn-s"})
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())

    control.post(f"/pix/{TXID}/pay")

    [notification] = receiver.requests
    assert (notification.path, notification.query["hmac"]) == ("/cb", ["gn-s"])


def test_devolution_partial_repeat_and_over(gn_sdk: Gerencianet, control: httpx.Client) -> None:
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())
    e2e = control.post(f"/pix/{TXID}/pay").json()["charge"]["pix"][0]["endToEndId"]

    first = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "2.34"})
    repeat = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "2.34"})
    over = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev2"}, body={"valor": "10.01"})
    rest = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev3"}, body={"valor": "10.00"})

    assert (first["status"], first["valor"], first["id"]) == ("DEVOLVIDO", "2.34", "dev1")
    assert first["rtrId"].startswith("D")
    assert repeat == first
    assert over["status"] == 400
    assert rest["status"] == "DEVOLVIDO"
    assert [r["amount"] for r in control.get("/refunds").json()] == [234, 1000]
    assert control.get("/charges").json()[0]["amount_refunded"] == 1234
    cob = gn_sdk.pix_detail_charge(params={"txid": TXID})
    assert [d["id"] for d in cob["pix"][0]["devolucoes"]] == ["dev1", "dev3"]


def test_an_expired_cob_cannot_be_paid(
    sim: SimulatorServer, gn_sdk: Gerencianet, control: httpx.Client
) -> None:
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body())
    stored = sim.simulator.store.bucket("gerencianet.cobs")[TXID]
    stored["created"] -= timedelta(seconds=3601)  # as if created an hour ago

    answer = control.post(f"/pix/{TXID}/pay")

    assert answer.status_code == 409
    assert "expired" in answer.json()["error"]
