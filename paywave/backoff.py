"""Exponential backoff with jitter, as every retry loop of the project waits."""

import random


def backoff_delay(
    tries_so_far: int, *, base: float, factor: float, jitter: float, cap: float | None = None
) -> float:
    """Seconds to wait after `tries_so_far` (>= 1) failed tries: base * factor^(n-1), at most
    `cap`, then +/- `jitter` (a fraction) so that retries of many callers spread out."""
    delay = base * factor ** (tries_so_far - 1)
    if cap is not None:
        delay = min(delay, cap)
    return delay * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 (not a secret)
