"""Deadlines for the suite, scaled by one factor, and waiting for a condition instead of a clock.

A deadline here is a bound on a condition the test waits for, never the thing it checks: on a
busy machine everything is slower, so every deadline is multiplied by ``KUBERTH_TEST_TIME_FACTOR``
(default 1; CI on a loaded machine may set 2 or 3). Promises measured against a clock (a lease's
takeover time, say) are asserted against their own figure plus this slack, not a fixed guess.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How much slower than an idle 2-core machine this run may be.
FACTOR = float(os.environ.get("KUBERTH_TEST_TIME_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A deadline of ``seconds`` on an idle machine, stretched by the suite's factor."""
    return seconds * FACTOR


def eventually(
    condition: Callable[[], T | None],
    *,
    within: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something truthy; return that.

    For conditions nothing can be watched for (a metric, a log line, a port). ``within`` is the
    idle-machine bound; it is scaled. The failure names ``what`` was awaited and for how long.
    """
    limit = scaled(within)
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {limit:.1f} s")
        time.sleep(interval)
