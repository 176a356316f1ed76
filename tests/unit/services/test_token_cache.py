"""The token cache keeps a verdict for its time at most, and drops it when the epoch moves."""

from __future__ import annotations

import time

from kuberth.services.principal import Principal
from kuberth.services.token_cache import TokenCache

ALICE = Principal(7, "alice", None, is_admin=False, namespaces=frozenset({"alice"}))


class Epoch:
    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def test_a_verdict_is_kept_until_the_epoch_moves() -> None:
    epoch = Epoch()
    cache = TokenCache(seconds=60, epoch=epoch)
    assert cache.get("k") is None
    cache.put("k", ALICE, epoch=cache.epoch, valid_for=60)
    assert cache.get("k") is ALICE
    epoch.value += 1
    assert cache.get("k") is None
    # Read before the move, kept after it: stale at once.
    cache.put("k", ALICE, epoch=0, valid_for=60)
    assert cache.get("k") is None


def test_a_verdict_lasts_no_longer_than_the_cache_or_the_token() -> None:
    cache = TokenCache(seconds=0.05, epoch=Epoch())
    cache.put("short", ALICE, epoch=0, valid_for=60)
    cache.put("expiring", ALICE, epoch=0, valid_for=0.01)
    cache.put("expired", ALICE, epoch=0, valid_for=-1)
    assert cache.get("expired") is None
    time.sleep(0.02)
    assert cache.get("expiring") is None
    time.sleep(0.04)
    assert cache.get("short") is None


def test_zero_seconds_keeps_nothing() -> None:
    cache = TokenCache(seconds=0, epoch=Epoch())
    cache.put("k", ALICE, epoch=0, valid_for=60)
    assert cache.get("k") is None


def test_the_oldest_verdict_goes_when_it_is_full() -> None:
    cache = TokenCache(seconds=60, epoch=Epoch(), size=2)
    for key in ("a", "b", "c"):
        cache.put(key, ALICE, epoch=0, valid_for=60)
    assert [cache.get(key) for key in ("a", "b", "c")] == [None, ALICE, ALICE]
