"""Where a delivery connects: to an address that was checked, with TLS against the name.

DNS is outside the machine, so names are answered by the `resolver` stub (conftest.py);
the receivers are real HTTPS servers on 127.0.0.1 with certificates of a test CA.
"""

import socket
from typing import Any

import pytest

from notifications.delivery import Outcome
from notifications.models import Delivery, DeliveryAttempt, DeliveryStatus
from tests.factories import WebhookEndpointFactory
from tests.notifications.conftest import Jobs, Resolver, record_event, tls_receiver

pytestmark = pytest.mark.django_db(transaction=True)

# A public address, as the check sees it. Nothing is ever sent there: the internet is
# outside the machine, so `connections` refuses it.
PUBLIC = "9.9.9.9"


class Connections:
    """Every TCP connection opened (socket.create_connection); public addresses refused."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.opened: list[tuple[str, int]] = []

    def create_connection(self, address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        self.opened.append((address[0], int(address[1])))
        if address[0] == PUBLIC:
            raise ConnectionRefusedError(111, "Connection refused (outside the machine)")
        return self._real(address, *args, **kwargs)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    spy = Connections(socket.create_connection)
    monkeypatch.setattr(socket, "create_connection", spy.create_connection)
    return spy


def test_a_name_rebound_to_loopback_after_the_check_is_not_delivered_to(
    trusted_ca: Any, resolver: Resolver, connections: Connections, jobs: Jobs, settings: Any
) -> None:
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = False
    with tls_receiver(trusted_ca, "wallet.example.com") as receiver:
        port = int(receiver.base_url.rsplit(":", 1)[1])
        # Public to the first lookup (the check), 127.0.0.1 to any later one.
        resolver.answer("wallet.example.com", [PUBLIC], ["127.0.0.1"])
        endpoint = WebhookEndpointFactory(url=receiver.url())
        record_event(endpoint.client)

        assert jobs.run_next().outcome == Outcome.RETRY  # not delivered

        assert receiver.requests == []
        assert receiver.server_names == []  # not even a TLS handshake reached it
    assert resolver.lookups == ["wallet.example.com"]  # one lookup: the one checked
    assert connections.opened == [(PUBLIC, port)]
    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.status_code is None
    assert attempt.error.startswith("ConnectError")


def test_a_name_that_resolves_to_loopback_at_the_check_is_refused_before_connecting(
    trusted_ca: Any, resolver: Resolver, connections: Connections, jobs: Jobs, settings: Any
) -> None:
    settings.PAYWAVE_WEBHOOK_ALLOW_PRIVATE = False
    with tls_receiver(trusted_ca, "wallet.example.com") as receiver:
        resolver.answer("wallet.example.com", [PUBLIC, "127.0.0.1"])
        endpoint = WebhookEndpointFactory(url=receiver.url())
        record_event(endpoint.client)

        assert jobs.run_next().outcome == Outcome.RETRY

        assert receiver.requests == []
    assert connections.opened == []
    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.error == (
        "refused: wallet.example.com resolves to 127.0.0.1, which is not a public address"
    )


def test_https_delivery_connects_to_the_resolved_address_and_verifies_the_name(
    trusted_ca: Any, resolver: Resolver, connections: Connections, jobs: Jobs
) -> None:
    with tls_receiver(trusted_ca, "wallet.example.com") as receiver:
        port = int(receiver.base_url.rsplit(":", 1)[1])
        resolver.answer("wallet.example.com", ["127.0.0.1"])
        endpoint = WebhookEndpointFactory(url=receiver.url("/paywave"))
        record_event(endpoint.client)

        jobs.drive()

        (request,) = receiver.requests
        assert request.path == "/paywave"
        assert request.headers["Host"] == f"wallet.example.com:{port}"
        assert receiver.server_names == ["wallet.example.com"]  # SNI: the name
    assert connections.opened == [("127.0.0.1", port)]  # TCP: the address looked up
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_https_delivery_refuses_a_certificate_for_another_name(
    trusted_ca: Any, resolver: Resolver, jobs: Jobs
) -> None:
    with tls_receiver(
        trusted_ca, "wallet.example.com", certificate_for="other.example.com"
    ) as receiver:
        resolver.answer("wallet.example.com", ["127.0.0.1"])
        endpoint = WebhookEndpointFactory(url=receiver.url())
        record_event(endpoint.client)

        assert jobs.run_next().outcome == Outcome.RETRY

        assert receiver.requests == []
    (attempt,) = DeliveryAttempt.objects.all()
    assert attempt.status_code is None
    assert "CERTIFICATE_VERIFY_FAILED" in attempt.error
    assert "other.example.com" in attempt.error or "match" in attempt.error
