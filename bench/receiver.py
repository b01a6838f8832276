"""The wallet apps' webhook endpoint: a small asyncio HTTP server inside the bench process.

Each app registers `http://127.0.0.1:<port>/hooks/<app>`; every delivery is checked
against that endpoint's secret (PayWave-Signature, as examples/verify_webhook.py does)
and its arrival time kept. It answers 200 at once and keeps the connection open for the
next delivery (HTTP/1.1's default), as a wallet app's server does.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_BODY = 1_000_000
IDLE_SECONDS = 30  # a kept-alive connection left idle this long is closed


@dataclass
class Delivery:
    app: int
    arrived: float  # time.time()
    event: dict[str, Any]


@dataclass
class Receiver:
    secrets: dict[int, str] = field(default_factory=dict)  # app -> endpoint secret
    deliveries: int = 0
    forged: int = 0
    duplicates: int = 0
    on_delivery: Callable[[Delivery], None] | None = None
    _seen: set[str] = field(default_factory=set)
    _server: asyncio.AbstractServer | None = None
    _open: set[asyncio.StreamWriter] = field(default_factory=set)
    port: int = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, app: int) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{app}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):  # kept-alive connections end their loops
                writer.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests one after another on the connection, as a wallet app's server keeps it
        alive, until the sender closes it or leaves it idle."""
        self._open.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass  # the sender went away, or the run ends with the connection kept alive
        finally:
            self._open.discard(writer)
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        keep_alive = False
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return False  # closed by the sender, or idle
        try:
            lines = head.decode("latin-1").split("\r\n")
            _, path, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            length = min(int(headers.get("content-length", "0")), MAX_BODY)
            body = await asyncio.wait_for(reader.readexactly(length), 10)
            status = self._handle(path, headers.get("paywave-signature", ""), body)
            keep_alive = headers.get("connection", "").lower() != "close"
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status = 400
        reason = "OK" if status == 200 else "Bad Request"
        connection = "keep-alive" if keep_alive else "close"
        answer = f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: {connection}"
        writer.write(f"{answer}\r\n\r\n".encode())
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return keep_alive

    def _handle(self, path: str, signature: str, body: bytes) -> int:
        try:
            app = int(path.rstrip("/").rsplit("/", 1)[-1])
        except ValueError:
            return 404
        secret = self.secrets.get(app)
        if secret is None or not verify(secret, signature, body):
            self.forged += 1
            return 400
        event = json.loads(body)
        self.deliveries += 1
        if event["id"] in self._seen:
            self.duplicates += 1  # at least once: a repeat is answered 2xx and ignored
            return 200
        self._seen.add(event["id"])
        if self.on_delivery is not None:
            self.on_delivery(Delivery(app, time.time(), event))
        return 200


def verify(secret: str, header: str, body: bytes, tolerance: float = 300) -> bool:
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value for key, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not signatures:
        return False
    try:
        if abs(time.time() - int(stamps[0])) > tolerance:
            return False
    except ValueError:
        return False
    expected = hmac.new(secret.encode(), stamps[0].encode() + b"." + body, hashlib.sha256)
    return any(hmac.compare_digest(expected.hexdigest(), s.strip()) for s in signatures)
