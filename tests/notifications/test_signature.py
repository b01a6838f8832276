"""The standalone example (examples/verify_webhook.py) against real PayWave deliveries."""

import ast
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from notifications.delivery import Outcome
from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus
from notifications.signing import signature_header, webhook_secret_generate
from tests.factories import WebhookEndpointFactory
from tests.notifications.conftest import REPO_ROOT, Jobs, Receiver, record_event

pytestmark = pytest.mark.django_db(transaction=True)


def parse_header(header: str) -> tuple[int, str]:
    parts = dict(part.split("=", 1) for part in header.split(","))
    return int(parts["t"]), parts["v1"]


def test_the_example_uses_the_standard_library_only() -> None:
    tree = ast.parse((REPO_ROOT / "examples" / "verify_webhook.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}  # fmt: skip
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}  # fmt: skip
    assert imported <= sys.stdlib_module_names, imported - sys.stdlib_module_names


def test_real_deliveries_verify_with_the_example(
    receiver: Receiver, jobs: Jobs, example: ModuleType
) -> None:
    receiver.script(500)  # the first try fails: its retry is signed afresh
    endpoint = WebhookEndpointFactory(url=receiver.url())
    other = WebhookEndpointFactory(url=receiver.url("/other"), client=endpoint.client)
    record_event(endpoint.client, "payment.processing", description="Pão de queijo ☕")
    record_event(endpoint.client, "payment.succeeded")

    jobs.drive()

    assert len(receiver.requests) == 5  # 2 events x 2 endpoints, one retry
    secrets = {"/hooks": endpoint.secret, "/other": other.secret}
    for request in receiver.requests:
        header = request.headers["PayWave-Signature"]
        timestamp, _ = parse_header(header)
        secret = secrets[request.path]
        assert example.verify(secret, header, request.body)
        assert example.verify(secret, header, request.body, now=timestamp + 299)
        # Tampered, re-serialized, someone else's secret, stale, or from the future.
        assert not example.verify(secret, header, request.body + b" ")
        reencoded = json.dumps(json.loads(request.body)).encode()
        assert reencoded != request.body
        assert not example.verify(secret, header, reencoded)
        wrong = secrets["/other" if request.path == "/hooks" else "/hooks"]
        assert not example.verify(wrong, header, request.body)
        assert not example.verify(secret, header, request.body, now=timestamp + 301)
        assert not example.verify(secret, header, request.body, now=timestamp - 301)
        _, sent = parse_header(header)
        assert not example.verify(secret, f"t={timestamp + 1},v1={sent}", request.body)
    assert "Pão de queijo ☕" in receiver.requests[0].body.decode()


def test_the_documented_test_vector(example: ModuleType) -> None:
    """docs/webhooks.md gives wallet apps a vector to check their code against: it holds."""
    doc = (REPO_ROOT / "docs" / "webhooks.md").read_text()
    header = re.search(r"`(t=\d+,v1=[0-9a-f]{64})`", doc).group(1)
    body = re.search(r"`(\{\"id\":\"evt_1\".*\})`", doc).group(1).encode()
    timestamp, _ = parse_header(header)

    assert signature_header("whsec_test_vector", timestamp, body) == header
    assert example.verify("whsec_test_vector", header, body, now=timestamp + 300)
    assert not example.verify("whsec_test_vector", header, body, now=timestamp + 301)


def test_an_endpoint_secret_is_whsec_and_256_random_bits() -> None:
    secrets = {webhook_secret_generate() for _ in range(20)}

    assert len(secrets) == 20
    for secret in secrets:
        prefix, _, token = secret.partition("_")
        assert prefix == "whsec"
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 bytes, URL-safe base64


@pytest.mark.parametrize(
    "header",
    ["", "garbage", "t=abc,v1=00", "v1=00", "t=1700000000", "t=1700000000,v1="],
)
def test_the_example_refuses_malformed_headers(example: ModuleType, header: str) -> None:
    assert not example.verify("whsec_x", header, b"{}", now=1700000000)


@pytest.mark.parametrize(
    "header",
    [
        "t=1700000000,v1=" + "é" * 64,  # not ASCII (http.server decodes headers as Latin-1)
        "t=1700000000,v1=" + "0" * 63 + "\u0663",  # an Arabic-Indic digit
        "t=\u00b2,v1=" + "0" * 64,  # a superscript two: str.isdigit() says yes
        "t=" + "9" * 400 + ",v1=" + "0" * 64,  # too large to subtract from a float clock
        "t=1700000000,t=1700000001,v1=" + "0" * 64,
        "t=1700000000,v1=" + "0" * 64 + "," * 5000,
    ],
)
def test_the_example_refuses_hostile_headers_without_raising(
    example: ModuleType, header: str
) -> None:
    assert example.verify("whsec_x", header, b"{}", now=1700000000) is False


SIGNED_AT = 1700000000


def signed(body: bytes = b"{}") -> str:
    return signature_header("whsec_x", SIGNED_AT, body).split(",v1=")[1]


def near_miss(signature: str, at: int = -1) -> str:
    """The signature with one hex digit changed (the last one, unless `at`)."""
    digits = list(signature)
    digits[at] = "0" if digits[at] != "0" else "1"
    return "".join(digits)


@pytest.mark.parametrize(
    "v1",
    [
        pytest.param(lambda good: near_miss(good), id="the last hex digit changed"),
        pytest.param(lambda good: near_miss(good, at=0), id="the first hex digit changed"),
        pytest.param(lambda good: good[:32], id="the first half"),
        pytest.param(lambda good: good[:63], id="all but one digit"),
        pytest.param(lambda good: good[:1], id="one digit"),
        pytest.param(lambda good: "", id="empty"),
        pytest.param(lambda good: good.upper(), id="upper case"),
        pytest.param(lambda good: good + "0", id="one digit more"),
    ],
)
def test_the_example_refuses_a_v1_that_is_not_the_whole_signature(
    example: ModuleType, v1: Any
) -> None:
    good = signed()
    assert example.verify("whsec_x", f"t={SIGNED_AT},v1={good}", b"{}", now=SIGNED_AT)

    assert not example.verify("whsec_x", f"t={SIGNED_AT},v1={v1(good)}", b"{}", now=SIGNED_AT)


def test_the_example_compares_whole_signatures_in_constant_time(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hmac.compare_digest on both full 64-character values, whatever the outcome."""
    compared: list[tuple[Any, Any]] = []
    compare_digest = example.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(example.hmac, "compare_digest", spy)
    good = signed()

    assert example.verify("whsec_x", f"t={SIGNED_AT},v1={good}", b"{}", now=SIGNED_AT)
    assert not example.verify(
        "whsec_x", f"t={SIGNED_AT},v1={near_miss(good)}", b"{}", now=SIGNED_AT
    )

    assert [(len(a), len(b)) for a, b in compared] == [(64, 64), (64, 64)]
    candidates = [b if isinstance(b, str) else b.decode() for _, b in compared]
    assert candidates == [good, near_miss(good)]


def test_the_example_accepts_any_matching_v1_of_several(example: ModuleType) -> None:
    header = signature_header("whsec_x", 1700000000, b"{}")
    assert example.verify("whsec_x", header.replace(",v1=", ",v1=00,v1="), b"{}", now=1700000000)


@pytest.fixture
def example_receiver(example: ModuleType) -> Iterator[Any]:
    """The example's own http.server receiver, as a wallet app would run it."""
    started: list[Any] = []

    def start(secret: str) -> str:
        server = example.make_receiver(secret, port=0)
        started.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/paywave"

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "header",
    [
        "t={now},v1=" + "é" * 64,  # http.server decodes header bytes as Latin-1
        "t=\u00b2,v1=" + "0" * 64,  # a superscript two: str.isdigit() says yes
        "t=" + "9" * 400 + ",v1=" + "0" * 64,  # too large to subtract from a float clock
        "garbage",
    ],
)
def test_the_example_receiver_answers_400_to_a_malformed_signature(
    example_receiver: Any, header: bytes
) -> None:
    url = example_receiver("whsec_x")

    raw = header.format(now=int(time.time())).encode("latin-1")
    response = httpx.post(url, content=b"{}", headers={"PayWave-Signature": raw})

    assert response.status_code == 400


def test_the_example_receiver_acknowledges_real_deliveries(
    example_receiver: Any, jobs: Jobs, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = WebhookEndpointFactory()
    endpoint.url = example_receiver(endpoint.secret)
    endpoint.save(update_fields=["url"])
    impostor = WebhookEndpointFactory(client=endpoint.client)  # signs with another secret
    impostor.url = example_receiver("whsec_not_the_impostors_secret")
    impostor.save(update_fields=["url"])
    event = record_event(endpoint.client)

    for _ in range(2):  # one try to each endpoint (fanned out with the event)
        jobs.run_next()

    delivered = Delivery.objects.get(endpoint=endpoint)
    assert delivered.status == DeliveryStatus.DELIVERED
    assert DeliveryAttempt.objects.get(delivery=delivered).status_code == 204
    refused = Delivery.objects.get(endpoint=impostor)
    assert refused.status == DeliveryStatus.PENDING
    assert DeliveryAttempt.objects.get(delivery=refused).status_code == 400
    assert [outcome for _, outcome in jobs.deliveries()].count(Outcome.RETRY) == 1
    assert f"payment.succeeded {event.public_id}" in capsys.readouterr().out
