"""The fairness limits on their own: token buckets, long-wait slots, and probes needing no worker
thread of the requests'."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import get_args

import anyio
import anyio.to_thread
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from kuberth.exceptions import TooManyRequestsError
from kuberth.http.app import create_app
from kuberth.http.dependencies import CurrentPrincipal
from kuberth.http.fairness import LongWaits, RateLimiter
from kuberth.settings import Settings
from tests.kubeconfigs import unreachable
from tests.timing import scaled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(TooManyRequestsError) as refused:
        limiter.take("a")
    assert refused.value.retry_after == 1  # half a second to a token, rounded up
    limiter.take("b")  # another key has a bucket of its own
    clock.now += 0.5
    limiter.take("a")
    with pytest.raises(TooManyRequestsError):
        limiter.take("a")


def test_retry_after_is_the_time_to_one_token_rounded_up() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=0.1, burst=1, clock=clock)
    limiter.take("a")
    clock.now += 2.5
    with pytest.raises(TooManyRequestsError) as refused:
        limiter.take("a")
    assert refused.value.retry_after == 8  # 7.5 s to go
    assert refused.value.status_code == 429


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    for _ in range(100):
        limiter.take("a")


def test_full_buckets_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    limiter.take("a")
    clock.now += RateLimiter.SWEEP_INTERVAL + 1
    limiter.take("b")  # sweeps: a's bucket is full again
    assert set(limiter._buckets) == {"b"}


def test_long_waits_are_capped_per_key_and_in_all_and_freed_when_done() -> None:
    waits = LongWaits(per_tenant=2, total=3)
    refusals: list[tuple[str, int]] = []

    async def served() -> str:
        return "served"

    async def main() -> None:
        release = anyio.Event()

        async def hold(key: str) -> None:
            await waits.run(key, 30, release.wait)

        async with anyio.create_task_group() as group:
            for key in ("a", "a", "b"):
                group.start_soon(hold, key)
            await anyio.wait_all_tasks_blocked()
            for key in ("a", "b"):
                with pytest.raises(TooManyRequestsError) as refused:
                    await waits.run(key, 30, anyio.lowlevel.checkpoint)
                refusals.append((refused.value.message, refused.value.retry_after))
            release.set()
        assert await waits.run("a", 30, served) == "served"

    # On a thread of its own: a session-wide Playwright (the browser tests) keeps an event loop
    # running in the main thread, where anyio.run would refuse to start another.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(anyio.run, main).result()
    (per_key, per_key_retry), (total, total_retry) = refusals
    assert "per user" in per_key
    assert "server" in total
    assert 1 <= per_key_retry <= 30
    assert 1 <= total_retry <= 30


def test_a_hold_shares_the_caps_with_threaded_waits_and_is_freed_once() -> None:
    """A log follow holds a slot with no thread: the same caps, freed by its release."""
    waits = LongWaits(per_tenant=2, total=3)
    first, second = waits.hold("a", 30), waits.hold("a", 30)
    assert waits.held("a") == 2
    with pytest.raises(TooManyRequestsError) as refused:
        waits.hold("a", 30)
    assert "log follows" in refused.value.message
    third = waits.hold("b", 30)
    with pytest.raises(TooManyRequestsError):  # the replica's total
        waits.hold("c", 30)
    first()
    first()  # a second call frees nothing more
    assert waits.held("a") == 1
    fourth = waits.hold("c", 30)
    for release in (second, third, fourth):
        release()
    assert waits.held("a") == waits.held("b") == waits.held("c") == 0


def test_probes_answer_when_every_worker_thread_is_taken(tmp_path: Path) -> None:
    settings = Settings(
        environment="development",
        kubeconfig=unreachable(tmp_path / "kubeconfig"),
        database_url=f"sqlite:///{tmp_path}/kuberth.db",
        kubernetes_request_timeout=2,
    )
    borrowers: list[object] = []
    with TestClient(create_app(settings)) as http:

        def take_every_thread() -> None:
            limiter = anyio.to_thread.current_default_thread_limiter()
            while limiter.available_tokens:
                borrowers.append(object())
                limiter.acquire_on_behalf_of_nowait(borrowers[-1])

        def give_them_back() -> None:
            limiter = anyio.to_thread.current_default_thread_limiter()
            for borrower in borrowers:
                limiter.release_on_behalf_of(borrower)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            http.portal.call(take_every_thread)
            try:
                healthz = pool.submit(http.get, "/healthz")
                readyz = pool.submit(http.get, "/readyz")
                assert healthz.result(timeout=scaled(5)).status_code == 200
                # Unreachable: a 503 of its own, not a wait for a thread.
                assert readyz.result(timeout=scaled(10)).status_code == 503
            finally:  # before the pool waits for its requests
                http.portal.call(give_them_back)


def test_readyz_answers_503_when_a_check_hangs(tmp_path: Path) -> None:
    settings = Settings(
        environment="development",
        kubeconfig=unreachable(tmp_path / "kubeconfig"),
        database_url=f"sqlite:///{tmp_path}/kuberth.db",
        kubernetes_request_timeout=1,
        kubernetes_retry_after=3,
    )

    async def hang() -> dict[str, str]:
        await anyio.sleep(scaled(60))
        return {}

    with TestClient(create_app(settings)) as http:
        http.app.state.services.health.acheck_ready = hang  # type: ignore[attr-defined]
        started = time.monotonic()
        response = http.get("/readyz")
        took = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"
    assert "did not finish within 2 s" in response.json()["message"]
    assert took < scaled(10)


def _calls(dependant: Dependant) -> set[object]:
    """Every function in a route's tree of dependencies."""
    found: set[object] = set()
    for sub in dependant.dependencies:
        found |= {sub.call, *_calls(sub)}
    return found


PAGES = "kuberth.http.pages."


def test_every_api_route_is_rate_limited_and_no_page_is(tmp_path: Path) -> None:
    """The limit is taken by the API's principal dependency, so it covers exactly the routes that
    have it: every /api/v1 route (a route without it would be neither authenticated nor limited),
    and no page."""
    settings = Settings(
        environment="development",
        kubeconfig=unreachable(tmp_path / "kubeconfig"),
        database_url=f"sqlite:///{tmp_path}/kuberth.db",
    )
    routes = [route for route in create_app(settings).routes if isinstance(route, APIRoute)]
    api = [route for route in routes if route.path.startswith("/api/v1")]
    pages = [route for route in routes if route.endpoint.__module__.startswith(PAGES)]
    assert len(api) > 40
    assert len(pages) > 20
    limited = get_args(CurrentPrincipal)[1].dependency
    assert [route.path for route in api if limited not in _calls(route.dependant)] == []
    assert [route.path for route in pages if limited in _calls(route.dependant)] == []
