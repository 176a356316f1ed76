"""Fairness between tenants: long waits capped per tenant and in all, and a per-tenant rate limit.

Both are in memory, so per replica: N replicas behind a load balancer let a tenant N times the
figures. Everything here runs on the event loop (async routes and dependencies), never in a
worker thread, so a refusal costs no thread and health checks never queue behind it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Request
from prometheus_client import Counter

from kuberth.exceptions import TooManyRequestsError
from kuberth.services.principal import Principal

T = TypeVar("T")

REFUSALS = Counter(
    "kuberth_http_refusals_total",
    "Requests refused with 429 to keep the server fair, by reason",
    ["reason"],
)
for _reason in ("rate_limit", "long_waits_per_tenant", "long_waits_total"):
    REFUSALS.labels(_reason)  # every series exists (at 0) from the start


def _retry_after(deadlines: list[float]) -> int:
    """Seconds until the soonest of ``deadlines``: by then a slot is free for sure."""
    return max(1, math.ceil(min(deadlines) - time.monotonic()))


class LongWaits:
    """Requests that wait on Kubernetes for long (a rollout, a namespace's deletion, a log
    follow): at most ``per_tenant`` at once per key, ``total`` at once in all, each beyond either
    refused at once with a 429. They wait on the event loop (async watches and streams), holding
    no thread.

    Retry-After is the time until the soonest of the waits in the way must end (its timeout); it
    may end sooner (the rollout completes), so a client retrying earlier may be served.
    """

    def __init__(self, *, per_tenant: int, total: int) -> None:
        self.per_tenant = per_tenant
        self.total = total
        #: When each wait held must end at the latest (its timeout), monotonic seconds: per key,
        #: and all of them.
        self._held: dict[str, list[float]] = {}
        self._all: list[float] = []

    def _admit(self, key: str, deadline: float) -> None:
        held = self._held.get(key, [])
        if len(held) >= self.per_tenant:
            REFUSALS.labels("long_waits_per_tenant").inc()
            raise TooManyRequestsError(
                f"at most {self.per_tenant} long waits (rollouts, deletions, log follows) at once"
                " per user",
                retry_after=_retry_after(held),
            )
        if len(self._all) >= self.total:
            REFUSALS.labels("long_waits_total").inc()
            raise TooManyRequestsError(
                "the server is holding as many long waits as it allows; retry later",
                retry_after=_retry_after(self._all),
            )
        self._held[key] = [*held, deadline]
        self._all.append(deadline)

    def _release(self, key: str, deadline: float) -> None:
        self._held[key].remove(deadline)
        self._all.remove(deadline)
        if not self._held[key]:
            del self._held[key]

    def hold(self, key: str, timeout: float) -> Callable[[], None]:
        """Take a slot for a wait that runs on the event loop (a log follow), or refuse with
        `TooManyRequestsError`; returns what frees it (calling it again does nothing). The wait
        needs no thread, and must end within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        self._admit(key, deadline)
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._release(key, deadline)

        return release

    def held(self, key: str) -> int:
        """How many waits ``key`` holds now."""
        return len(self._held.get(key, []))

    async def run(self, key: str, timeout: float, function: Callable[[], Awaitable[T]]) -> T:
        """Await ``function`` (a wait on the event loop, which returns within about ``timeout``
        seconds) in a slot, or refuse with `TooManyRequestsError`; it holds no thread."""
        release = self.hold(key, timeout)
        try:
            return await function()
        finally:
            release()


class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``rate`` a second.

    Buckets that have filled up again are forgotten (a sweep at most once a minute), so memory
    follows the callers of the last minute or so, not every caller ever seen.
    """

    SWEEP_INTERVAL = 60.0

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()
        self._swept = clock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take_credential(self, secret: str | None) -> None:
        """Before authentication: a bucket per credential (a digest of its secret), so a flood
        from one token or session is refused at the cost of a hash, without asking the database
        who it is. A bucket's figures are the user's, so one credential's refusals come exactly
        when its user's would; the user's own bucket after authentication still holds all of a
        user's credentials together."""
        if secret is not None and self.enabled:
            self.take(f"credential:{hashlib.sha256(secret.encode()).hexdigest()}")

    def take(self, key: str) -> None:
        """Spend a token of ``key``'s bucket, or raise `TooManyRequestsError` when it is empty,
        with Retry-After the seconds until it holds one again (at least 1)."""
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                REFUSALS.labels("rate_limit").inc()
                raise TooManyRequestsError(
                    f"over {self.rate:g} requests a second (bursts of {self.burst}); slow down",
                    retry_after=max(1, math.ceil((1 - tokens) / self.rate)),
                )
            self._buckets[key] = (tokens - 1, now)
            if now - self._swept > self.SWEEP_INTERVAL:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._swept = now
        full = [
            key
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]


@dataclass
class Fairness:
    """The app's limits, kept on ``app.state.fairness``."""

    long_waits: LongWaits
    rate: RateLimiter


def fairness(request: Request) -> Fairness:
    value: Fairness = request.app.state.fairness
    return value


def tenant_key(github_id: int) -> str:
    """Operators are keyed like anyone else: their own GitHub id."""
    return f"user:{github_id}"


async def long_wait(
    request: Request,
    principal: Principal,
    timeout: float,
    function: Callable[[], Awaitable[T]],
) -> T:
    """Await a long wait of the caller's (``function``, bounded by ``timeout`` seconds) within
    the long-wait limits; what a route awaits."""
    return await fairness(request).long_waits.run(
        tenant_key(principal.github_id), timeout, function
    )
