"""Percentiles and per-second series: the arithmetic every bench shares."""

import math
import statistics
from collections.abc import Iterable
from typing import Any


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list: the ceil(fraction * n)-th value."""
    rank = max(1, math.ceil(round(fraction * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(values: Iterable[float], digits: int = 1) -> dict[str, float] | None:
    """p50, p95, p99, max and mean of the values (None when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return {
        "p50": round(percentile(ordered, 0.50), digits),
        "p95": round(percentile(ordered, 0.95), digits),
        "p99": round(percentile(ordered, 0.99), digits),
        "max": round(ordered[-1], digits),
        "mean": round(statistics.fmean(ordered), digits),
        "count": len(ordered),
    }


def per_second(times: Iterable[float], start: float) -> list[int]:
    """How many of the moments (seconds, same clock as `start`) fall in each second."""
    counts: list[int] = []
    for moment in times:
        second = int(moment - start)
        if second < 0:
            continue
        if second >= len(counts):
            counts.extend([0] * (second + 1 - len(counts)))
        counts[second] += 1
    return counts


def latency_per_second(
    samples: Iterable[tuple[float, float]], start: float, fraction: float
) -> list[float | None]:
    """The `fraction` percentile of the latencies started in each second ((moment, ms) pairs)."""
    buckets: dict[int, list[float]] = {}
    for moment, value in samples:
        buckets.setdefault(int(moment - start), []).append(value)
    if not buckets:
        return []
    return [
        round(percentile(sorted(buckets[s]), fraction), 1) if s in buckets else None
        for s in range(max(buckets) + 1)
    ]


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def counts_by(values: Iterable[Any]) -> dict[str, int]:
    found: dict[str, int] = {}
    for value in values:
        found[str(value)] = found.get(str(value), 0) + 1
    return dict(sorted(found.items()))
