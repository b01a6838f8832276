"""`python -m bench serve`: the bench's platform, up until Ctrl-C (or --for seconds).

For poking at it by hand, profiling it, or running accept-latency/processing against
it: it prints the API and simulator URLs, the wallet apps' credentials and the
environment (database, broker, Redis) it runs on.
"""

import argparse
import contextlib
import json
import signal
import time
from datetime import UTC, datetime
from types import FrameType

from bench import scenarios
from bench.load import platform_settings
from bench.supervisor import (
    APP_PASSWORD,
    ROOT,
    Platform,
    add_resource_arguments,
    resource_settings,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench serve")
    parser.add_argument("--scenario", default="latency0", help="platform settings from [load.X]")
    parser.add_argument("--for", dest="seconds", type=float, default=0, help="0: until Ctrl-C")
    add_resource_arguments(parser)
    args = parser.parse_args(argv)
    config = scenarios.scenario("load", args.scenario)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run_dir = ROOT / "var" / "bench" / f"serve-{stamp}"
    platform = Platform(platform_settings(config, run_dir, resources=resource_settings(args)))

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with platform:
        platform.prepare()
        platform.start()
        keys = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
        print(
            json.dumps(
                {
                    "api": platform.base_url,
                    "simulators": platform.simulator_url,
                    "wallet_apps": [f"bench-app-{i}" for i in range(platform.settings.apps)],
                    "password": APP_PASSWORD,
                    "pids": {name: p.pid for name, p in platform.processes.items()},
                    "logs": str(platform.run_dir / "logs"),
                    "env": {key: platform.env[key] for key in keys},
                },
                indent=2,
            ),
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(args.seconds or 10**9)
