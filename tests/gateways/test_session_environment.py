"""The gateway session reads the environment's proxy and CA settings once per origin."""

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateways.transport import TracedSession, environment_settings

ORIGIN = "http://gateway.invalid"


class _Proxy(http.server.BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself and keeps its request line."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    _Proxy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fresh_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    environment_settings.cache_clear()
    yield
    environment_settings.cache_clear()


def test_a_proxy_from_the_environment_carries_gateway_calls(
    monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)

    answer = TracedSession().request("GET", f"{ORIGIN}/v1/payment_intents", timeout=5)

    assert answer.text == "ok"
    assert _Proxy.seen == [f"{ORIGIN}/v1/payment_intents"]


def test_no_proxy_exempts_its_hosts(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "gateway.invalid")

    assert environment_settings(ORIGIN)[0] == {}
    assert environment_settings("http://other.invalid")[0]["http"] == proxy


def test_an_explicit_proxy_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there

    answer = TracedSession().request(
        "GET", f"{ORIGIN}/v1/charges", proxies={"http": proxy}, timeout=5
    )

    assert answer.status_code == 200
    assert _Proxy.seen == [f"{ORIGIN}/v1/charges"]


def test_the_environment_is_read_once_per_origin(
    monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy)
    session = TracedSession()
    session.request("GET", f"{ORIGIN}/first", timeout=5)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")

    session.request("GET", f"{ORIGIN}/second", timeout=5)

    assert _Proxy.seen == [f"{ORIGIN}/first", f"{ORIGIN}/second"]
    assert environment_settings.cache_info().misses == 1


def test_the_ca_bundle_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    assert environment_settings("https://api.stripe.invalid") == ({}, str(bundle))


def test_a_netrc_never_lends_credentials_to_a_gateway(
    monkeypatch: pytest.MonkeyPatch, proxy: str, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine gateway.invalid login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", proxy)

    answer = TracedSession().request("GET", f"{ORIGIN}/v1/charges", timeout=5)

    assert "Authorization" not in answer.request.headers
