"""`python -m gateways.simulators --host 127.0.0.1 --port 8900
[--mtls-port 8901 --cert server.pem --key key.pem --client-ca ca.pem] [--state-file PATH]
[--gateway-ports [stripe=8911,mercadopago=8912,gerencianet=8913,paypal=8914]]
[--log-level INFO] [--log-format json|plain]`

Callback URLs, secrets and credentials come from the environment (see
SimulatorConfig.from_env and README.md). Stops on SIGINT or SIGTERM. Logs one JSON
object per line on stdout, as PayWave's processes do (`LOG_FORMAT=plain`: plain lines).
"""

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from types import FrameType

from gateways.simulators.config import SimulatorConfig
from gateways.simulators.log_lines import configure_logging
from gateways.simulators.routing import GATEWAYS
from gateways.simulators.server import MTLSSettings, SimulatorServer

logger = logging.getLogger("gateways.simulators")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gateways.simulators",
        description="Stripe, Mercado Pago, Gerencianet and PayPal simulators for PayWave's "
        "sandbox.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--mtls-port", type=int, help="also serve HTTPS with client certificates")
    parser.add_argument("--cert", help="server certificate chain (PEM) for --mtls-port")
    parser.add_argument("--key", help="server private key (PEM) for --mtls-port")
    parser.add_argument("--client-ca", help="CA (PEM) that client certificates must chain to")
    parser.add_argument("--hang-ms", type=int, help="how long a timeout fault holds a request")
    parser.add_argument("--public-url", help="base URL for links in answers (3-D Secure page)")
    parser.add_argument(
        "--state-file", help="SQLite file that keeps charges and answers across restarts"
    )
    parser.add_argument(
        "--gateway-ports",
        nargs="?",
        const="",
        metavar="GATEWAY=PORT,...",
        help="also serve each gateway on a port of its own (free ports unless given), "
        "which a `refuse` fault closes; GET /_sim/ports lists them",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format", choices=("json", "plain"), default=os.environ.get("LOG_FORMAT", "json")
    )
    arguments = parser.parse_args(argv)
    mtls_parts = (arguments.cert, arguments.key, arguments.client_ca)
    if arguments.mtls_port is not None and not all(mtls_parts):
        parser.error("--mtls-port needs --cert, --key and --client-ca")
    if arguments.gateway_ports is not None:
        try:
            arguments.gateway_ports = _gateway_ports(arguments.gateway_ports)
        except ValueError as exc:
            parser.error(f"--gateway-ports: {exc}")
    return arguments


def _gateway_ports(text: str) -> dict[str, int]:
    """ "stripe=8911,mercadopago=8912" -> {"stripe": 8911, ...}; the others get free ports."""
    ports = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        gateway, _, port = part.partition("=")
        if gateway not in GATEWAYS or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected GATEWAY=PORT with GATEWAY one of {', '.join(GATEWAYS)}")
        ports[gateway] = int(port)
    return ports


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    configure_logging(arguments.log_level, arguments.log_format)
    config = SimulatorConfig.from_env()
    overrides = {}
    if arguments.hang_ms is not None:
        overrides["hang_ms"] = arguments.hang_ms
    if arguments.public_url:
        overrides["public_url"] = arguments.public_url
    if arguments.state_file:
        overrides["state_file"] = arguments.state_file
    config = dataclasses.replace(config, **overrides)
    mtls = None
    if arguments.mtls_port is not None:
        mtls = MTLSSettings(arguments.mtls_port, arguments.cert, arguments.key, arguments.client_ca)
    gateway_ports = arguments.gateway_ports if arguments.gateway_ports is not None else False
    server = SimulatorServer(
        arguments.host, arguments.port, config=config, mtls=mtls, gateway_ports=gateway_ports
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    logger.info("simulators listening on %s", server.base_url)
    if server.mtls_base_url:
        logger.info("mTLS listener on %s", server.mtls_base_url)
    for gateway in server.gateway_ports:
        logger.info("%s on its own port: %s", gateway, server.gateway_base_url(gateway))
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
