"""Sockets: a threaded HTTP listener, optionally an HTTPS one that demands a client
certificate (mTLS) and one HTTP listener per gateway, all serving the same Simulator."""

import dataclasses
import logging
import socket
import socketserver
import ssl
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from gateways.simulators.app import Action, Outcome, Simulator
from gateways.simulators.config import SimulatorConfig
from gateways.simulators.routing import GATEWAYS, Request, Response

logger = logging.getLogger("gateways.simulators.server")

HANDSHAKE_TIMEOUT_S = 10.0
LINGER_S = 1.0  # at most this long reading what a refused TLS client still sends


@dataclass(frozen=True)
class MTLSSettings:
    port: int  # 0 picks a free port
    cert_file: str  # the server's certificate chain (PEM)
    key_file: str  # its private key (PEM)
    # CA(s) that client certificates must chain to; None serves plain TLS, no client
    # certificate asked (for SDK behaviour that differs on https://, e.g. retry adapters).
    client_ca_file: str | None

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(self.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class _Handler(BaseHTTPRequestHandler):
    server: "_Listener"
    protocol_version = "HTTP/1.0"  # one request per connection: faults stay per request

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

    def _serve(self) -> None:
        simulator = self.server.simulator
        read_body = self._body_reader()
        if read_body is None:
            return
        # The head (method, path) has been read, the body not yet: the prefix says which
        # gateway's fault applies, and some faults reset the connection before reading on.
        head = Request.build(self.command, self.path, dict(self.headers.items()), b"")
        decision = simulator.decide(head)
        if decision is not None and decision.resets_unread and head.gateway is not None:
            self._carry_out(simulator.reset_unread(head.gateway, decision, head))
            return
        request = dataclasses.replace(head, body=read_body())
        self._carry_out(simulator.handle(request, decision))

    def _carry_out(self, outcome: Outcome) -> None:
        if outcome.action is Action.RESET:
            self._reset_connection()
        elif outcome.action is Action.DROP:
            self.close_connection = True
        elif outcome.response is not None:
            self._write(outcome.response)

    def _body_reader(self) -> Callable[[], bytes] | None:
        """How to read the body; None (400 sent) when its length makes no sense."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return None
        return lambda: self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError as exc:  # the client gave up (e.g. after its timeout)
            logger.debug("could not answer %s %s: %s", self.command, self.path, exc)

    def _reset_connection(self) -> None:
        _reset(self.connection)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended badly", client_address, exc_info=True)


class _TLSListener(_Listener):
    def __init__(
        self, address: tuple[str, int], simulator: Simulator, context: ssl.SSLContext
    ) -> None:
        self.ssl_context = context
        super().__init__(address, simulator)

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        # The handshake happens in the connection's own thread (finish_request), so one
        # slow or refused client never holds up the accept loop.
        wrapped = self.ssl_context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(HANDSHAKE_TIMEOUT_S)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError) as exc:
            logger.info("TLS handshake with %s refused: %s", client_address, exc)
            _linger(request)
            return
        super().finish_request(request, client_address)


class _GatewayListener(_Listener):
    """A gateway's own port: every route, and the faults that act before a request is read."""

    def __init__(self, address: tuple[str, int], simulator: Simulator, gateway: str) -> None:
        self.gateway = gateway
        super().__init__(address, simulator)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Connections accepted just before a `refuse` closed the port meet the same fate.
        decision = self.simulator.faults.decide_unread(self.gateway)
        if decision is not None:
            self.simulator.reset_unread(self.gateway, decision)
            _reset(request)
            return
        super().finish_request(request, client_address)


def _reset(connection: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _hold_port(family: int, address: tuple[str, int]) -> socket.socket | None:
    """A socket bound to the port and not listening: connections to it are refused
    (ECONNREFUSED), and no other socket (an outgoing connection's ephemeral port
    included) can take the port meanwhile. SO_REUSEADDR lets the listener bind again."""
    hold = socket.socket(family, socket.SOCK_STREAM)
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        hold.bind(address)
    except OSError as exc:
        logger.warning("could not hold port %s while refusing: %s", address[1], exc)
        hold.close()
        return None
    return hold


def _linger(connection: socket.socket) -> None:
    """Close after a refused handshake the way web servers do (lingering close).

    A TLS 1.3 client sends its request before it learns that its certificate was
    refused; closing with those bytes unread makes the kernel send a TCP reset, which
    can overtake the alert, so the client would see a bare EOF instead of the
    "certificate required" alert a real server's client reads.
    """
    try:
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(LINGER_S)
        while connection.recv(4096):
            pass
    except OSError:
        pass


class SimulatorServer:
    """The simulators on a local port (and an mTLS port, and a port per gateway), in
    background threads.

    with SimulatorServer("127.0.0.1", 0, gateway_ports=True) as sim:
        stripe.StripeClient("sk_test_x", base_addresses={"api": sim.base_url + "/stripe"})
        sim.gateway_base_url("stripe") + "/stripe"  # Stripe's own port: can refuse connections
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        config: SimulatorConfig | None = None,
        mtls: MTLSSettings | None = None,
        gateway_ports: bool | Mapping[str, int] = False,
    ) -> None:
        self.host = host
        self.simulator = Simulator(config)
        self._mtls = mtls
        self._requested_port = port
        self._requested_gateway_ports = _gateway_ports(gateway_ports)
        self._listeners: list[_Listener] = []
        self._threads: list[threading.Thread] = []
        # Gateway ports: the bound port of each, the listening listener of each gateway that
        # is not refusing, the socket holding the port of each that is, and listeners closed
        # by a refusal (their connections may still be running).
        self._gateway_port: dict[str, int] = {}
        self._gateway_listeners: dict[str, _GatewayListener] = {}
        self._port_holds: dict[str, socket.socket | None] = {}
        self._closed_listeners: list[_Listener] = []
        self._ports_lock = threading.Lock()
        self._running = False

    @property
    def port(self) -> int:
        if not self._listeners:
            raise RuntimeError("the simulator server is not started")
        return self._listeners[0].server_port

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def mtls_port(self) -> int | None:
        return self._listeners[1].server_port if len(self._listeners) > 1 else None

    @property
    def mtls_base_url(self) -> str | None:
        port = self.mtls_port
        return f"https://{_url_host(self.host)}:{port}" if port is not None else None

    @property
    def gateway_ports(self) -> dict[str, int]:
        """Each gateway's own port (empty unless started with gateway_ports)."""
        return dict(self._gateway_port)

    def gateway_port(self, gateway: str) -> int:
        if gateway not in self._gateway_port:
            raise KeyError(f"no port of its own for {gateway!r} (start with gateway_ports=True)")
        return self._gateway_port[gateway]

    def gateway_base_url(self, gateway: str) -> str:
        """http://host:<the gateway's own port>; like base_url, without the path prefix."""
        return f"http://{_url_host(self.host)}:{self.gateway_port(gateway)}"

    def start(self) -> "SimulatorServer":
        if self.simulator.config.state_file:  # from what the file holds, on every start
            self.simulator.store.attach(self.simulator.config.state_file)
        self.simulator.stopping.clear()
        self._listeners = [_Listener((self.host, self._requested_port), self.simulator)]
        if self._mtls is not None:
            self._listeners.append(
                _TLSListener((self.host, self._mtls.port), self.simulator, self._mtls.context())
            )
        self.simulator.context.public_url = self.simulator.config.public_url or self.base_url
        for listener in self._listeners:
            self._serve(listener)
        self._gateway_port = {}
        for gateway, port in self._requested_gateway_ports.items():
            listener = _GatewayListener((self.host, port), self.simulator, gateway)
            self._gateway_port[gateway] = listener.server_port
            self._gateway_listeners[gateway] = listener
            self._serve(listener)
        self.simulator.ports.clear()
        self.simulator.ports.update({"shared": self.port, **self._gateway_port})
        if self.mtls_port is not None:
            self.simulator.ports["mtls"] = self.mtls_port
        with self._ports_lock:
            self._running = True
        self.simulator.faults.on_change = self._follow_faults
        self._follow_faults()  # faults outlive a stop: a gateway may be refusing already
        logger.info(
            "simulators on %s%s%s",
            self.base_url,
            f" and {self.mtls_base_url} (mTLS)" if self.mtls_base_url else "",
            "".join(f", {name} on port {port}" for name, port in self._gateway_port.items()),
        )
        return self

    def _serve(self, listener: _Listener) -> None:
        thread = threading.Thread(
            target=listener.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"simulator:{listener.server_port}",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    def _follow_faults(self) -> None:
        """Close the own port of each gateway whose fault is `refuse` (the kernel then
        refuses connections to it), and listen again on it once the fault is gone."""
        with self._ports_lock:
            if not self._running:
                return
            for gateway, port in self._gateway_port.items():
                refusing = self.simulator.faults.refuses(gateway)
                listener = self._gateway_listeners.get(gateway)
                if refusing and listener is not None:
                    listener.shutdown()  # from a handler thread too: serve_forever has its own
                    listener.socket.close()
                    del self._gateway_listeners[gateway]
                    self._closed_listeners.append(listener)
                    self._port_holds[gateway] = _hold_port(
                        listener.address_family, (self.host, port)
                    )
                    logger.info("%s port %s: refusing connections", gateway, port)
                elif not refusing and listener is None:
                    listener = _GatewayListener((self.host, port), self.simulator, gateway)
                    hold = self._port_holds.pop(gateway, None)
                    if hold is not None:
                        hold.close()
                    self._gateway_listeners[gateway] = listener
                    self._serve(listener)
                    logger.info("%s port %s: listening again", gateway, port)

    def stop(self) -> None:
        self.simulator.faults.on_change = None
        self.simulator.stopping.set()  # wakes requests sleeping in latency or a hang
        with self._ports_lock:
            self._running = False
            listening = [*self._listeners, *self._gateway_listeners.values()]
            closed, holds = self._closed_listeners, list(self._port_holds.values())
            self._gateway_listeners, self._port_holds, self._closed_listeners = {}, {}, []
        for listener in listening:
            listener.shutdown()
        for listener in [*listening, *closed]:
            listener.server_close()  # waits for the connections still running
        for hold in holds:
            if hold is not None:
                hold.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self.simulator.store.close()

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _gateway_ports(requested: bool | Mapping[str, int]) -> dict[str, int]:
    """Each gateway's port to bind (0: a free one), from True or {gateway: port}."""
    if requested is False:
        return {}
    chosen = {} if requested is True else dict(requested)
    if unknown := sorted(set(chosen) - set(GATEWAYS)):
        raise ValueError(f"unknown gateway(s) {', '.join(unknown)}; one of {', '.join(GATEWAYS)}")
    return {gateway: chosen.get(gateway, 0) for gateway in GATEWAYS}


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 (comparing, not binding)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
