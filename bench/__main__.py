import sys

from bench import accept_latency, processing, transfers

COMMANDS = {
    "accept-latency": accept_latency.main,
    "processing": processing.main,
    "transfers": transfers.main,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: python -m bench {" + ",".join(COMMANDS) + "} [options]")
    COMMANDS[sys.argv[1]](sys.argv[2:])
