"""A PNG a person can look at: throughput and latency over time (matplotlib, optional)."""

from pathlib import Path
from typing import Any

INSTALL_HINT = "matplotlib is missing: .venv/bin/pip install -r requirements-bench.txt"


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot(series: dict[str, Any], title: str, out: Path) -> Path | None:
    """series: {"phases": [{name, start, end}], "lines": {panel: {label: [(t, value)]}}}."""
    if not have_matplotlib():
        print(INSTALL_HINT)
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("throughput", "per second"),
        ("accept latency", "ms (log)"),
        ("completion latency", "s"),
    ]
    figure, axes = plt.subplots(len(panels), 1, figsize=(12, 10), sharex=True)
    for axis, (panel, unit) in zip(axes, panels, strict=True):
        for label, points in series["lines"].get(panel, {}).items():
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, label=label, linewidth=1.2)
        for index, phase in enumerate(series["phases"]):
            axis.axvspan(phase["start"], phase["end"], alpha=0.07, color=f"C{index % 10}")
            if axis is axes[0]:
                axis.text(phase["start"], 1.02, phase["name"], transform=axis.get_xaxis_transform(),
                          fontsize=8)  # fmt: skip
        for event in series.get("events", []):
            axis.axvline(event["t"], color="red", alpha=0.35, linewidth=0.8)
            if axis is axes[0]:
                axis.text(event["t"], 0.98, event.get("short", event["label"]), rotation=90,
                          fontsize=6, transform=axis.get_xaxis_transform(), va="top",
                          color="red", clip_on=True)  # fmt: skip
        axis.set_ylabel(f"{panel}\n{unit}")
        if panel == "accept latency":
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("seconds since the start of the run")
    figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
