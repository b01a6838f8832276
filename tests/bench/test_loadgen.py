"""The load generator and its scenarios: what the bench measures with must not be the limit.

A closed loop holds a connection of its own (a pool shared by all of them spent the
generator's CPU on itself and capped the bare insert), no connection is reused once the
API's gunicorn may be closing it, and a scenario's `env` adds to the defaults' (where the
throttle's limit is lifted) instead of replacing it.
"""

import asyncio
from pathlib import Path

from bench.loadgen import KEEPALIVE_EXPIRY_S, Generator, LoadShape, http_client
from bench.scenarios import scenario

ANSWER = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    b'{"id": "p"}'
)


async def _answer_every_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peers: set[int]
) -> None:
    peers.add(writer.get_extra_info("peername")[1])
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _closed_loops_against_a_server(loops: int, requests: int) -> tuple[int, set[int]]:
    peers: set[int] = set()
    server = await asyncio.start_server(
        lambda r, w: _answer_every_request(r, w, peers), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    # The shared client has one connection: loops sharing it would share that one.
    async with server, http_client(f"http://127.0.0.1:{port}", 1) as shared:
        generator = Generator(shared, "/api/v1/payments", ["token"], lambda i: (0, {"i": i}, "pix"))
        samples = await generator.run(LoadShape("max", loops, count=requests))
    return sum(s.status == 202 for s in samples), peers


def test_each_closed_loop_sends_on_a_connection_of_its_own() -> None:
    answered, peers = asyncio.run(_closed_loops_against_a_server(loops=4, requests=40))

    assert answered == 40
    assert len(peers) == 4


def test_a_scenarios_env_adds_to_the_defaults(tmp_path: Path) -> None:
    toml = tmp_path / "scenarios.toml"
    toml.write_text(
        '[defaults]\nenv = { PAYWAVE_THROTTLE_RATE = "1000000/min" }\n'
        '[load.own]\nenv = { PAYWAVE_OUTBOX_SWEEP_SECONDS = "5" }\n'
        "[load.none]\n"
    )

    assert scenario("load", "own", toml)["env"] == {
        "PAYWAVE_THROTTLE_RATE": "1000000/min",
        "PAYWAVE_OUTBOX_SWEEP_SECONDS": "5",
    }
    assert scenario("load", "none", toml)["env"] == {"PAYWAVE_THROTTLE_RATE": "1000000/min"}


def test_every_shipped_scenario_lifts_the_throttle() -> None:
    for kind, name in [("load", "latency0"), ("history", "1m"), ("chaos", "smoke")]:
        assert scenario(kind, name)["env"]["PAYWAVE_THROTTLE_RATE"] == "1000000/min"


def test_no_connection_is_kept_idle_as_long_as_gunicorn_keeps_it() -> None:
    from gunicorn.config import Config

    import config.gunicorn

    server_keeps = getattr(config.gunicorn, "keepalive", Config().keepalive)
    client = http_client("http://127.0.0.1:9", 4)

    assert client._transport._pool._keepalive_expiry == KEEPALIVE_EXPIRY_S  # type: ignore[attr-defined]
    assert server_keeps > KEEPALIVE_EXPIRY_S
