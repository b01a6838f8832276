"""Efí's MED infractions in the Gerencianet simulator: opened and closed through the control
API, read and answered through Efí's /v2/gn/infracoes routes (plain HTTP, with a token),
cobs paid and devolved through the real gerencianet SDK."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gerencianet import Gerencianet

from gateways.simulators import SimulatorConfig, SimulatorServer
from gateways.simulators.config import (
    SANDBOX_GERENCIANET_CLIENT_ID,
    SANDBOX_GERENCIANET_CLIENT_SECRET,
)
from tests.gateways.simulators.conftest import CallbackReceiver, cob_body

TXID = "PayWaveMed0123456789abcdefABCD01"
OTHER_TXID = "PayWaveMed0123456789abcdefABCD02"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def efi_client(base_url: str) -> httpx.Client:
    """A client of the simulated Efí API with a bearer token."""
    token = httpx.post(
        base_url + "/gerencianet/oauth/token",
        auth=(SANDBOX_GERENCIANET_CLIENT_ID, SANDBOX_GERENCIANET_CLIENT_SECRET),
        json={"grant_type": "client_credentials"},
    ).json()["access_token"]
    return httpx.Client(
        base_url=base_url + "/gerencianet",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


@pytest.fixture
def efi(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with efi_client(sim.base_url) as client:
        yield client


def paid_cob(
    gn_sdk: Gerencianet, control: httpx.Client, txid: str = TXID, reference: str = "pw_gn"
) -> str:
    """A cob for 12.34 paid by the simulated payer; its pix's endToEndId."""
    gn_sdk.pix_create_charge(params={"txid": txid}, body=cob_body(reference))
    answer = control.post(f"/pix/{txid}/pay")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["charge"]["pix"][0]["endToEndId"])


def open_dispute(control: httpx.Client, reference: str = "pw_gn", **body: Any) -> httpx.Response:
    return control.post("/disputes", json={"reference": reference, **body})


def listed(efi: httpx.Client, **query: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    window = {"inicio": rfc3339(now - timedelta(hours=1)), "fim": rfc3339(now + timedelta(hours=1))}
    answer = efi.get("/v2/gn/infracoes", params={**window, **query})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def defend(efi: httpx.Client, infraction_id: str, **body: Any) -> httpx.Response:
    return efi.post(f"/v2/gn/infracoes/{infraction_id}/defesa", json=body)


# Opening.


def test_open_a_med_infraction_on_a_paid_cob(
    gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/cb", "secret": "gn-s"})
    e2e = paid_cob(gn_sdk, control)
    before = datetime.now(UTC) - timedelta(seconds=1)

    answer = open_dispute(control, reason="fraude")

    assert answer.status_code == 201, answer.text
    opened = answer.json()
    infraction = opened["dispute"]
    assert (opened["id"], opened["gateway"], opened["charge"]) == (
        infraction["idInfracao"],
        "gerencianet",
        TXID,
    )
    assert {k: infraction[k] for k in ("endToEndId", "txid", "valor", "tipo", "motivo")} == {
        "endToEndId": e2e,
        "txid": TXID,
        "valor": "12.34",  # nothing returned yet: all of it
        "tipo": "SOLICITACAO_DEVOLUCAO",
        "motivo": "fraude",
    }
    assert (infraction["situacao"], infraction["defesa"]) == ("ABERTA", None)
    created = parse(infraction["criacao"])
    assert before <= created <= datetime.now(UTC)
    assert infraction["atualizacao"] == infraction["criacao"]
    assert parse(infraction["prazoDefesa"]) == created + timedelta(days=7)
    assert listed(efi)["infracoes"] == [infraction]
    # The callback goes where Efí's pix notifications go, in the same form.
    assert opened["callback"]["delivered"] is True
    [notification] = receiver.requests[1:]  # after the payment's
    assert (notification.path, notification.query) == (
        "/cb",
        {"hmac": ["gn-s"], "ignorar": ["/pix"]},
    )
    assert notification.json() == {"infracoes": [infraction]}


def test_a_partial_amount_and_the_limits(gn_sdk: Gerencianet, control: httpx.Client) -> None:
    e2e = paid_cob(gn_sdk, control)
    gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "2.34"})

    over = open_dispute(control, amount=1001)  # 10.00 is left
    partial = open_dispute(control, amount=500)
    again = open_dispute(control)

    assert over.status_code == 400
    assert "1000" in over.json()["error"]
    assert partial.status_code == 201
    assert partial.json()["dispute"]["valor"] == "5.00"
    assert again.status_code == 409  # one open infraction per pix


def test_the_default_amount_is_what_is_left(gn_sdk: Gerencianet, control: httpx.Client) -> None:
    e2e = paid_cob(gn_sdk, control)
    gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "2.34"})

    assert open_dispute(control).json()["dispute"]["valor"] == "10.00"


def test_only_a_paid_cob_of_a_known_payment_takes_one(
    gn_sdk: Gerencianet, control: httpx.Client
) -> None:
    gn_sdk.pix_create_charge(params={"txid": TXID}, body=cob_body("pw_unpaid"))

    unpaid = open_dispute(control, "pw_unpaid")
    unknown = open_dispute(control, "pw_never")

    assert (unpaid.status_code, unknown.status_code) == (404, 404)


def test_a_card_kind_of_dispute_is_refused(gn_sdk: Gerencianet, control: httpx.Client) -> None:
    paid_cob(gn_sdk, control)

    answer = open_dispute(control, gateway="gerencianet", kind="chargeback")

    assert answer.status_code == 400
    assert "MED" in answer.json()["error"]


def test_a_devolucao_cannot_dig_into_a_blocked_amount(
    gn_sdk: Gerencianet, control: httpx.Client
) -> None:
    e2e = paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control, amount=1000).json()["id"]

    over = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev1"}, body={"valor": "2.35"})
    rest = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev2"}, body={"valor": "2.34"})
    control.post(f"/disputes/{dispute_id}/close", json={"outcome": "won"})
    released = gn_sdk.pix_devolution(params={"e2eId": e2e, "id": "dev3"}, body={"valor": "10.00"})

    assert over["status"] == 400
    assert over["violacoes"][0]["propriedade"] == "valor"
    assert (rest["status"], released["status"]) == ("DEVOLVIDO", "DEVOLVIDO")


# Closing.


def test_close_won_releases_the_funds(
    gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client
) -> None:
    e2e = paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control).json()["id"]

    closed = control.post(f"/disputes/{dispute_id}/close", json={"outcome": "won"})
    twice = control.post(f"/disputes/{dispute_id}/close", json={"outcome": "lost"})

    assert closed.status_code == 200
    infraction = closed.json()["dispute"]
    assert infraction["situacao"] == "REJEITADA"
    assert infraction["atualizacao"] >= infraction["criacao"]
    assert listed(efi)["infracoes"] == [infraction]
    assert twice.status_code == 409
    assert "devolucoes" not in gn_sdk.pix_detail(params={"e2eId": e2e})
    assert control.get("/charges").json()[0]["amount_refunded"] == 0


def test_close_lost_returns_the_money_as_a_med_devolucao(
    gn_sdk: Gerencianet, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/cb", "secret": "gn-s"})
    e2e = paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control, amount=1000).json()["id"]

    closed = control.post(f"/disputes/{dispute_id}/close", json={"outcome": "lost"})

    infraction = closed.json()["dispute"]
    assert infraction["situacao"] == "ACEITA"
    [devolution] = gn_sdk.pix_detail(params={"e2eId": e2e})["devolucoes"]
    assert {k: devolution[k] for k in ("valor", "natureza", "status")} == {
        "valor": "10.00",
        "natureza": "MED_FRAUDE",  # the control API's default reason is "fraudulent"
        "status": "DEVOLVIDO",
    }
    assert devolution["rtrId"].startswith("D09089356")
    assert set(devolution["horario"]) == {"solicitacao", "liquidacao"}
    assert control.get("/charges").json()[0]["amount_refunded"] == 1000
    assert [r["amount"] for r in control.get("/refunds").json()] == [1000]
    # One callback per change, each with the infraction as it was then.
    situations = [r.json()["infracoes"][0]["situacao"] for r in receiver.requests[1:]]
    assert situations == ["ABERTA", "ACEITA"]
    # What is left can be contested again, and no more.
    assert open_dispute(control, amount=235).status_code == 400
    assert open_dispute(control).json()["dispute"]["valor"] == "2.34"


def test_an_operational_reason_returns_as_med_operacional(
    gn_sdk: Gerencianet, control: httpx.Client
) -> None:
    e2e = paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control, reason="falha_operacional").json()["id"]

    control.post(f"/disputes/{dispute_id}/close", json={"outcome": "lost"})

    [devolution] = gn_sdk.pix_detail(params={"e2eId": e2e})["devolucoes"]
    assert devolution["natureza"] == "MED_OPERACIONAL"


def test_closing_an_unknown_infraction_is_404(control: httpx.Client) -> None:
    assert control.post("/disputes/nope/close", json={"outcome": "won"}).status_code == 404


# The merchant's defense.


def test_a_contested_infraction_goes_to_analysis(
    gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/cb", "secret": "gn-s"})
    paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control).json()["id"]

    answer = defend(efi, dispute_id, analise="rejeitado", justificativa="Entregue em 02/05.")
    again = defend(efi, dispute_id, analise="aceito", justificativa="")

    assert answer.status_code == 200, answer.text
    infraction = answer.json()
    assert infraction["situacao"] == "EM_ANALISE"
    assert infraction["defesa"]["analise"] == "rejeitado"
    assert infraction["defesa"]["justificativa"] == "Entregue em 02/05."
    assert infraction["defesa"]["horario"] == infraction["atualizacao"]
    assert listed(efi)["infracoes"] == [infraction]
    assert receiver.requests[-1].json() == {"infracoes": [infraction]}
    assert receiver.requests[-1].query["hmac"] == ["gn-s"]
    # Answered once: a second answer is refused in Efí's own error shape.
    assert again.status_code == 400
    assert set(again.json()) == {"nome", "mensagem"}
    # The payer's PSP decides.
    lost = control.post(f"/disputes/{dispute_id}/close", json={"outcome": "lost"})
    assert lost.json()["dispute"]["situacao"] == "ACEITA"
    assert lost.json()["dispute"]["defesa"] == infraction["defesa"]


def test_accepting_returns_the_money_at_once(
    gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client
) -> None:
    e2e = paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control).json()["id"]

    answer = defend(efi, dispute_id, analise="aceito")

    assert answer.json()["situacao"] == "ACEITA"
    [devolution] = gn_sdk.pix_detail(params={"e2eId": e2e})["devolucoes"]
    assert (devolution["valor"], devolution["status"]) == ("12.34", "DEVOLVIDO")
    assert control.post(f"/disputes/{dispute_id}/close", json={"outcome": "won"}).status_code == 409


def test_a_closed_infraction_takes_no_defense(
    gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client
) -> None:
    paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control).json()["id"]
    control.post(f"/disputes/{dispute_id}/close", json={"outcome": "won"})

    answer = defend(efi, dispute_id, analise="rejeitado", justificativa="tarde demais")

    assert answer.status_code == 400
    assert answer.json()["nome"] == "infracao_nao_permite_defesa"
    assert "REJEITADA" in answer.json()["mensagem"]


def test_a_defense_after_the_deadline_is_refused(
    sim: SimulatorServer, gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client
) -> None:
    paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control).json()["id"]
    stored = sim.simulator.store.bucket("gerencianet.disputes")[dispute_id]
    stored["data"]["prazoDefesa"] = rfc3339(datetime.now(UTC) - timedelta(seconds=1))

    answer = defend(efi, dispute_id, analise="rejeitado", justificativa="x")

    assert (answer.status_code, answer.json()["nome"]) == (400, "prazo_defesa_expirado")


@pytest.mark.parametrize(
    "body",
    [
        {"analise": "talvez", "justificativa": "x"},
        {"justificativa": "x"},
        {"analise": ["rejeitado"], "justificativa": "x"},
        {"analise": "rejeitado"},
        {"analise": "rejeitado", "justificativa": ""},
        {"analise": "rejeitado", "justificativa": 7},
    ],
    ids=[
        "unknown analise",
        "no analise",
        "analise a list",
        "no justificativa",
        "empty",
        "not a string",
    ],
)
def test_a_malformed_defense_is_refused(
    gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client, body: dict[str, Any]
) -> None:
    paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control).json()["id"]

    answer = defend(efi, dispute_id, **body)

    assert (answer.status_code, answer.json()["nome"]) == (400, "json_invalido")
    assert listed(efi)["infracoes"][0]["situacao"] == "ABERTA"


def test_a_defense_of_an_unknown_infraction_is_404(efi: httpx.Client) -> None:
    answer = defend(efi, "nope", analise="rejeitado", justificativa="x")

    assert answer.status_code == 404
    assert answer.json()["nome"] == "infracao_nao_encontrada"


def test_the_routes_want_a_token(sim: SimulatorServer) -> None:
    answer = httpx.get(f"{sim.base_url}/gerencianet/v2/gn/infracoes")

    assert answer.status_code == 401


# The list.


def test_the_list_window_covers_creation_or_last_change(
    sim: SimulatorServer, gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client
) -> None:
    paid_cob(gn_sdk, control)
    dispute_id = open_dispute(control).json()["id"]
    stored = sim.simulator.store.bucket("gerencianet.disputes")[dispute_id]
    stored["created"] -= timedelta(days=2)  # as if opened two days ago
    stored["updated"] -= timedelta(days=2)
    now = datetime.now(UTC)
    recent = {"inicio": rfc3339(now - timedelta(days=1)), "fim": rfc3339(now + timedelta(hours=1))}

    before_change = listed(efi, **recent)["infracoes"]
    control.post(f"/disputes/{dispute_id}/close", json={"outcome": "won"})
    after_change = listed(efi, **recent)["infracoes"]
    ended = listed(
        efi, inicio=rfc3339(now - timedelta(days=3)), fim=rfc3339(now - timedelta(days=1))
    )

    assert before_change == []
    assert [i["idInfracao"] for i in after_change] == [dispute_id]
    assert [i["idInfracao"] for i in ended["infracoes"]] == [dispute_id]


def test_the_list_is_paged(gn_sdk: Gerencianet, control: httpx.Client, efi: httpx.Client) -> None:
    txids = [f"PayWaveMedPaging0123456789abc{n}" for n in range(3)]
    for n, txid in enumerate(txids):
        paid_cob(gn_sdk, control, txid, f"pw_page_{n}")
        open_dispute(control, f"pw_page_{n}")

    first = listed(efi, **{"paginacao.itensPorPagina": 2})
    second = listed(efi, **{"paginacao.itensPorPagina": 2, "paginacao.paginaAtual": 1})

    assert [i["txid"] for i in first["infracoes"] + second["infracoes"]] == txids
    assert first["parametros"]["paginacao"] == {
        "paginaAtual": 0,
        "itensPorPagina": 2,
        "quantidadeDePaginas": 2,
        "quantidadeTotalDeItens": 3,
    }
    assert second["parametros"]["paginacao"]["paginaAtual"] == 1


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"inicio": "2026-01-01T00:00:00Z"},
        {"inicio": "ontem", "fim": "2026-01-01T00:00:00Z"},
        {"inicio": "2026-01-01T00:00:00", "fim": "2026-01-02T00:00:00"},
        {
            "inicio": "2026-01-01T00:00:00Z",
            "fim": "2026-01-02T00:00:00Z",
            "paginacao.itensPorPagina": "0",
        },
        {
            "inicio": "2026-01-01T00:00:00Z",
            "fim": "2026-01-02T00:00:00Z",
            "paginacao.paginaAtual": "-1",
        },
    ],
    ids=["nothing", "no fim", "unreadable", "no offset", "page size 0", "negative page"],
)
def test_a_list_without_a_readable_window_is_refused(
    efi: httpx.Client, query: dict[str, str]
) -> None:
    answer = efi.get("/v2/gn/infracoes", params=query)

    assert answer.status_code == 400
    assert answer.json()["nome"] == "parametros_invalidos"


# Redelivery and the state file.


def test_a_redelivery_sends_the_same_change(
    gn_sdk: Gerencianet, control: httpx.Client, receiver: CallbackReceiver
) -> None:
    control.put("/callbacks/gerencianet", json={"url": receiver.url + "/cb", "secret": "gn-s"})
    paid_cob(gn_sdk, control)
    opened = open_dispute(control).json()
    control.post(f"/disputes/{opened['id']}/close", json={"outcome": "won"})

    control.post(f"/callbacks/deliveries/{opened['callback']['id']}/redeliver")

    assert receiver.requests[-1].json() == {"infracoes": [opened["dispute"]]}
    assert opened["callback"]["event"] == "infracao"


def test_infractions_survive_a_restart(tmp_path: Path) -> None:
    config = SimulatorConfig(hang_ms=200, state_file=str(tmp_path / "sim.sqlite3"))
    with (
        SimulatorServer("127.0.0.1", 0, config=config) as server,
        efi_client(server.base_url) as efi,
    ):
        efi.put(f"/v2/cob/{TXID}", json=cob_body()).raise_for_status()
        httpx.post(f"{server.base_url}/_sim/pix/{TXID}/pay").raise_for_status()
        opened = httpx.post(f"{server.base_url}/_sim/disputes", json={"reference": "pw_gn"})
        dispute_id = opened.json()["id"]
        defend(efi, dispute_id, analise="rejeitado", justificativa="x").raise_for_status()

    with (
        SimulatorServer("127.0.0.1", 0, config=config) as server,
        efi_client(server.base_url) as efi,
    ):
        [infraction] = listed(efi)["infracoes"]
        closed = httpx.post(
            f"{server.base_url}/_sim/disputes/{dispute_id}/close", json={"outcome": "lost"}
        )
        e2e = infraction["endToEndId"]
        pix = efi.get(f"/v2/pix/{e2e}").json()

    assert (infraction["idInfracao"], infraction["situacao"]) == (dispute_id, "EM_ANALISE")
    assert closed.status_code == 200
    assert pix["devolucoes"][0]["natureza"] == "MED_FRAUDE"
