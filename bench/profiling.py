"""py-spy (requirements-bench.txt) on running processes; collapsed stacks summarized.

Samples are taken only from the thread holding the GIL (`--gil`): in a threads pool
most threads wait on sockets, and what costs CPU is what holds the interpreter.
"""

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).parent / "py-spy"


def available() -> bool:
    return PY_SPY.exists() or shutil.which("py-spy") is not None


def record(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling `pid` and its children for `seconds`; raw collapsed stacks into `out`."""
    command = [
        str(PY_SPY if PY_SPY.exists() else "py-spy"),
        "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "97",
        "--subprocesses", "--nonblocking", "--gil", "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def _area(frame: str) -> str:
    """Which package a frame belongs to: 'function (path:line)' -> 'django', 'payments', ..."""
    path = frame[frame.rfind("(") + 1 :].rsplit(":", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1].removesuffix(".py")
    parts = path.split("/")
    return parts[0] if len(parts) > 1 else path


def summarize(raw: Path, top: int = 15) -> dict[str, Any]:
    """Own time by package and function (the leaf frame), and inclusive time by package
    (every package on the stack: e.g. all the time spent under `logging`)."""
    own_functions: Counter[str] = Counter()
    own_areas: Counter[str] = Counter()
    inclusive_areas: Counter[str] = Counter()
    total = 0
    if not raw.exists():
        return {"samples": 0}
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        count = int(count_text)
        own_functions[frames[-1]] += count
        own_areas[_area(frames[-1])] += count
        for area in {_area(frame) for frame in frames}:
            inclusive_areas[area] += count
        total += count

    def share(counter: Counter[str]) -> dict[str, float]:
        return {name: round(100 * n / total, 1) for name, n in counter.most_common(top)}

    return {
        "samples": total,
        "own_time_pct_by_package": share(own_areas),
        "inclusive_pct_by_package": share(inclusive_areas),
        "own_time_pct_by_function": share(own_functions),
    }
