import socket
import threading

import pytest
import requests

from gateways.base import Ambiguous, Retryable
from gateways.transport import transport_error


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_retryable() -> None:
    with pytest.raises(requests.ConnectionError) as raised:
        requests.get(f"http://127.0.0.1:{_closed_port()}/", timeout=1)

    assert isinstance(transport_error(raised.value, gateway="x"), Retryable)


def test_read_timeout_after_sending_is_ambiguous() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with pytest.raises(requests.ReadTimeout) as raised:
            requests.post(f"http://127.0.0.1:{port}/", data=b"charge", timeout=(1, 0.2))

    assert isinstance(transport_error(raised.value, gateway="x"), Ambiguous)


def test_connection_dropped_mid_answer_is_ambiguous() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def accept_and_drop() -> None:
            connection, _ = server.accept()
            connection.recv(65536)
            connection.close()

        thread = threading.Thread(target=accept_and_drop)
        thread.start()
        with pytest.raises(requests.ConnectionError) as raised:
            requests.post(f"http://127.0.0.1:{port}/", data=b"charge", timeout=2)
        thread.join()

    assert isinstance(transport_error(raised.value, gateway="x"), Ambiguous)
