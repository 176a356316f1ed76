"""A short memory of whom each API token proved, so a busy client costs no query per request.

Checking a token was a third of the CPU an API request costs Kuberth (a query on the event loop's
driver, for a row that almost never changes). kube-apiserver keeps its webhook token verdicts two
minutes by default; Kuberth keeps one for ``KUBERTH_TOKEN_CACHE_SECONDS`` (5) at most, never past
the token's expiry or the moment its user's sign-up verdict is due to be asked again, and only a
success (a refusal is asked again every time).

A change made through this process (a token deleted, a user revoked, a namespace recorded or
forgotten) moves the database's :attr:`~kuberth.storage.database.engine.Database.principals_epoch`,
and every verdict read before it is dropped: on the replica that made the change, it counts at
once. Other replicas see it within the cache's time (and revoking a user also removes their
RoleBindings, which Kubernetes enforces at once).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from kuberth.services.principal import Principal


class _Verdict(NamedTuple):
    principal: Principal
    epoch: int
    until: float  # time.monotonic()


class TokenCache:
    """Only the event loop uses it: no lock."""

    def __init__(self, *, seconds: float, epoch: Callable[[], int], size: int = 10_000) -> None:
        self.seconds = seconds
        self._epoch = epoch
        self._size = size
        self._verdicts: dict[str, _Verdict] = {}

    @property
    def epoch(self) -> int:
        """Read it before the query whose verdict :meth:`put` keeps."""
        return self._epoch()

    def get(self, key: str) -> Principal | None:
        """The principal ``key`` (the token's digest) proved, if that is still known."""
        verdict = self._verdicts.get(key)
        if verdict is None:
            return None
        if verdict.epoch != self._epoch() or time.monotonic() >= verdict.until:
            del self._verdicts[key]
            return None
        return verdict.principal

    def put(self, key: str, principal: Principal, *, epoch: int, valid_for: float) -> None:
        """Keep a verdict read at ``epoch`` for ``valid_for`` seconds at most (and no longer than
        the cache's time)."""
        seconds = min(self.seconds, valid_for)
        if seconds <= 0:
            return
        if len(self._verdicts) >= self._size:  # the oldest goes: a dict keeps insertion order
            del self._verdicts[next(iter(self._verdicts))]
        self._verdicts[key] = _Verdict(principal, epoch, time.monotonic() + seconds)
