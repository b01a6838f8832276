"""`python -m bench COMMAND [options]`: see bench/README.md."""

import importlib
import sys

COMMANDS = {
    "load": ("bench.load", "throughput and latency beside the bare stack (JSON + PNG)"),
    "chaos": ("bench.chaos", "thousands of payments through kills and faults; invariants"),
    "footprint": ("bench.footprint", "one payment's statements, WAL, Redis and AMQP, per stage"),
    "history": ("bench.history", "intake and reads on an empty table, then with 1M stored"),
    "serve": ("bench.serve", "the bench's platform, up until Ctrl-C (for poking and profiling)"),
    "accept-latency": ("bench.accept_latency", "sequential POST latency against a platform"),
    "processing": ("bench.processing", "charging throughput of a running platform"),
    "transfers": ("bench.transfers", "wallet transfer throughput of a running platform"),
    "mutation": ("bench.mutation", "mutants of the money code against its tests (mutmut)"),
    "prepared": ("bench.prepared", "statements prepared, values apart, against Django's default"),
}


def usage() -> str:
    lines = ["usage: python -m bench COMMAND [options]   (COMMAND --help for its options)", ""]
    lines += [f"  {name:15} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(usage())
    module = importlib.import_module(COMMANDS[sys.argv[1]][0])
    sys.exit(module.main(sys.argv[2:]))
