"""One tenant cannot stall the others: long waits are capped, the API is rate-limited per user.

Kuberth runs as a real `kuberth serve` process, so its worker threads are the production ones
(``kuberth.cli.WORKER_THREADS``). A paused Deployment never rolls out by itself: a rollout watch on
it waits until its timeout, or until the test writes the status that completes it. The issue saw,
without these limits, 80 such watches of one tenant make /healthz time out after 30 s and another
tenant's read take 27 s; here the same load must leave them answering within a few seconds.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer
from tests.integration.objects import complete_rollout, held_deployment
from tests.integration.processes import KuberthProcess, metric, serve_environment
from tests.integration.signin import sign_in
from tests.timing import eventually, scaled

#: What "promptly" means for a probe or another tenant's read while one tenant holds its waits:
#: an idle machine answers in milliseconds; the issue measured 30 s.
PROMPT = 5.0

Serve = Callable[..., AbstractContextManager[KuberthProcess]]


@pytest.fixture
def serve(
    kubeconfig: Path, github: StandInServer, sqlite_url: str, tmp_path: Path
) -> Iterator[Serve]:
    """`kuberth serve` with more settings (without the prefix, as strings); stopped afterwards."""

    @contextmanager
    def start(**settings: str) -> Iterator[KuberthProcess]:
        environment = serve_environment(
            port=free_port(),
            kubeconfig=kubeconfig,
            github=github,
            database_url=sqlite_url,
            secret_key=secrets.token_urlsafe(32),
            reconcile_interval="0",
            **settings,
        )
        process = KuberthProcess(environment, tmp_path / "kuberth.log").start()
        try:
            yield process
        finally:
            process.stop()

    return start


def signed_in(
    url: str, github: StandInServer, new_id: Callable[[], int]
) -> tuple[httpx.Client, str]:
    """A tenant's browser, signed in, and its personal namespace."""
    browser = httpx.Client(
        base_url=url, timeout=scaled(120), limits=httpx.Limits(max_connections=100)
    )
    login = f"f{secrets.token_hex(4)}"
    assert sign_in(browser, github, login=login, user_id=new_id()).status_code == 302
    return browser, login


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_refused(response: httpx.Response, error: str = "too_many_requests") -> int:
    """A 429 of the one error shape with a sane Retry-After; returns that."""
    assert response.status_code == 429, response.text
    assert response.json()["error"] == error, response.text
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def test_eighty_rollout_waits_of_one_tenant_stall_no_one(
    serve: Serve,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    apps = client.AppsV1Api(admin_api)
    # The rate limit off: this test is about the long waits' cap alone.
    with serve(rate_limit_per_second="0") as kuberth:
        alice, alice_ns = signed_in(kuberth.url, github, new_id)
        bob, bob_ns = signed_in(kuberth.url, github, new_id)
        created = alice.post("/api/v1/tokens", json={"name": "load", "expires_in_days": 1})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        apps.create_namespaced_deployment(alice_ns, held_deployment())
        rollout = f"/api/v1/namespaces/{alice_ns}/deployments/held/rollout"
        cap = 4  # KUBERTH_LONG_WAITS_PER_TENANT's default

        with (
            httpx.Client(
                base_url=kuberth.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=scaled(120),
                limits=httpx.Limits(max_connections=100),
            ) as api,
            concurrent.futures.ThreadPoolExecutor(max_workers=80) as pool,
        ):
            started = time.monotonic()
            waits = [pool.submit(api.get, rollout, params={"timeout": 60}) for _ in range(80)]

            # While the burst is being answered: the probes and another tenant, promptly.
            for _ in range(3):
                healthz, took = timed(lambda: httpx.get(f"{kuberth.url}/healthz", timeout=60))
                assert healthz.status_code == 200
                assert took < scaled(PROMPT), f"/healthz took {took:.1f} s"
                readyz, took = timed(lambda: httpx.get(f"{kuberth.url}/readyz", timeout=60))
                assert readyz.status_code == 200, readyz.text
                assert took < scaled(PROMPT), f"/readyz took {took:.1f} s"
                read, took = timed(lambda: bob.get(f"/api/v1/namespaces/{bob_ns}"))
                assert read.status_code == 200, read.text
                assert took < scaled(PROMPT), f"another tenant's read took {took:.1f} s"

            # Every wait beyond the cap is refused at once, not queued behind the others.
            refused = eventually(
                lambda: (
                    done
                    if len(done := [w for w in waits if w.done()]) >= len(waits) - cap
                    else None
                ),
                within=PROMPT * 2,
                what="the refusals of the waits beyond the cap",
            )
            answered = time.monotonic() - started
            assert len(refused) == len(waits) - cap, [w.result().text for w in refused]
            for wait in refused:
                retry_after = assert_refused(wait.result())
                assert retry_after <= 60  # the soonest of the held waits ends by then
            print(f"{len(refused)} waits refused with 429 within {answered:.2f} s")
            assert metric(
                kuberth.url, "kuberth_http_refusals_total", reason="long_waits_per_tenant"
            ) == len(refused)

            # Still holding: the probes and the other tenant are served as before, and so is
            # the tenant itself for anything that is not a long wait.
            for call in (
                lambda: httpx.get(f"{kuberth.url}/healthz", timeout=60),
                lambda: httpx.get(f"{kuberth.url}/readyz", timeout=60),
                lambda: bob.get(f"/api/v1/namespaces/{bob_ns}"),
                lambda: api.get(f"/api/v1/namespaces/{alice_ns}"),
            ):
                response, took = timed(call)
                assert response.status_code == 200, response.text
                assert took < scaled(PROMPT), f"{response.url} took {took:.1f} s"
            held = [w for w in waits if not w.done()]
            assert len(held) == cap

            # Once the rollout completes, the held waits answer and the slots are free again.
            complete_rollout(apps, alice_ns)
            for wait in held:
                answer = wait.result(timeout=scaled(60))
                assert answer.status_code == 200, answer.text
                assert answer.json()["outcome"] == "complete"
            again = api.get(rollout, params={"timeout": 60})
            assert again.status_code == 200, again.text
        alice.close()
        bob.close()


def test_the_long_waits_of_all_tenants_together_are_capped_too(
    serve: Serve,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    apps = client.AppsV1Api(admin_api)
    with serve(long_waits_per_tenant="2", long_waits_total="3") as kuberth:
        (alice, alice_ns), (carol, carol_ns), (bob, bob_ns) = (
            signed_in(kuberth.url, github, new_id) for _ in range(3)
        )
        for ns in (alice_ns, carol_ns):
            apps.create_namespaced_deployment(ns, held_deployment())

        def rollout(browser: httpx.Client, ns: str) -> httpx.Response:
            return browser.get(
                f"/api/v1/namespaces/{ns}/deployments/held/rollout", params={"timeout": 60}
            )

        watches = metric(kuberth.url, "kuberth_kubernetes_requests_total", verb="WATCH", code="200")
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            held = [pool.submit(rollout, alice, alice_ns) for _ in range(2)]
            held.append(pool.submit(rollout, carol, carol_ns))
            # The three are held once the server counts three watches it opened.
            eventually(
                lambda: (
                    metric(
                        kuberth.url, "kuberth_kubernetes_requests_total", verb="WATCH", code="200"
                    )
                    >= watches + 3
                ),
                within=30,
                what="three rollout watches open",
            )
            # Carol has one wait of her cap of two, but the server holds all it allows.
            refused, took = timed(lambda: rollout(carol, carol_ns))
            assert_refused(refused)
            assert "server" in refused.json()["message"], refused.text
            assert took < scaled(PROMPT)
            assert (
                metric(kuberth.url, "kuberth_http_refusals_total", reason="long_waits_total") == 1
            )
            # Others' ordinary requests do not count against it.
            read = bob.get(f"/api/v1/namespaces/{bob_ns}")
            assert read.status_code == 200, read.text
            assert not any(wait.done() for wait in held)
            for ns in (alice_ns, carol_ns):
                complete_rollout(apps, ns)
            for wait in held:
                assert wait.result(timeout=scaled(60)).status_code == 200
        for browser in (alice, carol, bob):
            browser.close()


def test_a_burst_past_the_rate_limit_is_refused_until_retry_after(
    serve: Serve, github: StandInServer, new_id: Callable[[], int]
) -> None:
    # One token every 4 s: the burst is spent long before the bucket can refill.
    with serve(rate_limit_per_second="0.25", rate_limit_burst="5") as kuberth:
        alice, alice_ns = signed_in(kuberth.url, github, new_id)
        bob, bob_ns = signed_in(kuberth.url, github, new_id)
        mine = f"/api/v1/namespaces/{alice_ns}"
        started = time.monotonic()
        served = 0
        while (refused := alice.get(mine)).status_code == 200 and served < 20:
            served += 1
        elapsed = time.monotonic() - started
        # The burst, and what the bucket refilled meanwhile: no more. Signing in spent one token
        # already (the sign-in helper reads the CSRF token from GET /api/v1/me).
        assert 4 <= served <= 4 + elapsed * 0.25, (served, elapsed)
        retry_after = assert_refused(refused)
        assert retry_after <= 4  # one token's refill, rounded up
        assert metric(kuberth.url, "kuberth_http_refusals_total", reason="rate_limit") >= 1

        # Another tenant is unaffected; probes and metrics are never limited.
        assert bob.get(f"/api/v1/namespaces/{bob_ns}").status_code == 200
        for _ in range(10):
            assert httpx.get(f"{kuberth.url}/healthz", timeout=scaled(10)).status_code == 200

        # Waiting as long as Retry-After says (the protocol's wait, not a guess) is enough.
        time.sleep(retry_after)
        again = alice.get(mine)
        assert again.status_code == 200, again.text
        alice.close()
        bob.close()


def test_a_credential_past_its_limit_is_refused_before_it_is_authenticated(serve: Serve) -> None:
    """A flood's refusals ask the database nothing: one token's bucket is checked before the
    token is looked up. A token nobody has is 401 (looked up) for the burst, then 429 with
    Retry-After (not looked up), as a valid token past its limit would be."""
    with serve(rate_limit_per_second="0.25", rate_limit_burst="5") as kuberth:
        headers = {"Authorization": f"Bearer kbt_{secrets.token_urlsafe(32)}"}
        answers = [
            httpx.get(f"{kuberth.url}/api/v1/me", headers=headers, timeout=scaled(10))
            for _ in range(8)
        ]
        codes = [answer.status_code for answer in answers]
        assert codes[:5] == [401] * 5, codes
        assert 429 in codes[5:], codes  # one token refills every 4 s: at most one more 401
        assert_refused(next(a for a in answers if a.status_code == 429))
        # Another credential has its own bucket.
        other = {"Authorization": f"Bearer kbt_{secrets.token_urlsafe(32)}"}
        assert httpx.get(f"{kuberth.url}/api/v1/me", headers=other).status_code == 401


#: Starvation: what "still served" means for a probe or a third tenant's read while one tenant
#: holds its long waits and another floods. The benchmark (``bench.starvation``) measures the
#: p99 against its 250 ms target on the 2-core machine; a test only catches a stall, with room
#: for a busy machine.
STARVED = 2.0
FLOOD_SECONDS = 5.0
PROBE_INTERVAL = 0.1


@dataclass
class Seen:
    """Answers of one caller: every status, and the seconds each 200 took."""

    statuses: Counter[int] = field(default_factory=Counter)
    took: list[float] = field(default_factory=list)
    refusals: list[httpx.Response] = field(default_factory=list)

    def add(self, response: httpx.Response, took: float) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 200:
            self.took.append(took)
        elif response.status_code == 429:
            self.refusals.append(response)

    def p99(self) -> float:
        ordered = sorted(self.took)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def probe(call: Callable[[], httpx.Response], until: float) -> Seen:
    """``call`` every PROBE_INTERVAL until ``until`` (monotonic), as a load balancer would."""
    seen = Seen()
    while (now := time.monotonic()) < until:
        seen.add(*timed(call))
        time.sleep(max(0.0, now + PROBE_INTERVAL - time.monotonic()))
    return seen


def flood(api: httpx.Client, path: str, until: float) -> Seen:
    """``path`` as fast as one connection allows until ``until``, Retry-After ignored."""
    seen = Seen()
    while time.monotonic() < until:
        seen.add(*timed(lambda: api.get(path)))
    return seen


def test_long_waits_and_a_flood_starve_neither_probes_nor_a_third_tenant(
    serve: Serve,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    """Tenant A opens 200 rollout waits at once and tenant B floods past its rate limit, with
    the default fairness settings: /healthz and tenant C's reads are answered promptly, nobody
    gets a 5xx, and every refusal is a 429 with Retry-After."""
    apps = client.AppsV1Api(admin_api)
    with serve() as kuberth, contextlib.ExitStack() as stack:
        (alice, alice_ns), (bob, bob_ns), (carol, carol_ns) = (
            signed_in(kuberth.url, github, new_id) for _ in range(3)
        )
        for browser in (alice, bob, carol):
            stack.callback(browser.close)
        created = alice.post("/api/v1/tokens", json={"name": "load", "expires_in_days": 1})
        assert created.status_code == 201, created.text
        waiter = stack.enter_context(
            httpx.Client(
                base_url=kuberth.url,
                headers={"Authorization": f"Bearer {created.json()['token']}"},
                timeout=scaled(120),
                limits=httpx.Limits(max_connections=200),  # all 200 waits sent at once
            )
        )
        apps.create_namespaced_deployment(alice_ns, held_deployment())
        apps.create_namespaced_deployment(carol_ns, held_deployment())
        rollout = f"/api/v1/namespaces/{alice_ns}/deployments/held/rollout"
        mine = f"/api/v1/namespaces/{carol_ns}/deployments/held"
        cap = 4  # KUBERTH_LONG_WAITS_PER_TENANT's default
        waits_pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=200))
        # Registered after the pool, so it runs first: the held waits end, and the pool's exit
        # does not wait for their timeout when an assertion below fails.
        stack.callback(lambda: complete_rollout(apps, alice_ns))
        others = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=4))

        waits = [waits_pool.submit(waiter.get, rollout, params={"timeout": 60}) for _ in range(200)]
        until = time.monotonic() + scaled(FLOOD_SECONDS)
        floods = [others.submit(flood, bob, f"/api/v1/namespaces/{bob_ns}", until) for _ in "ab"]
        healthz = others.submit(
            probe, lambda: httpx.get(f"{kuberth.url}/healthz", timeout=60), until
        )
        reads = others.submit(probe, lambda: carol.get(mine), until)

        refused = eventually(
            lambda: (
                done if len(done := [w for w in waits if w.done()]) >= len(waits) - cap else None
            ),
            within=STARVED * 10,
            what="the refusals of the waits beyond the cap",
        )
        # Every wait beyond the cap is refused (by the cap or the rate limit), none answered.
        for wait in refused:
            assert_refused(wait.result())
        flooded = Seen()
        for each in floods:
            seen = each.result(timeout=scaled(60))
            flooded.statuses += seen.statuses
            flooded.refusals += seen.refusals
        for refusal in flooded.refusals:
            assert_refused(refusal)
        assert set(flooded.statuses) <= {200, 429}, flooded.statuses
        assert flooded.statuses[429] > 0, "the flood never met the rate limit"

        for name, answers in (("/healthz", healthz.result()), ("tenant C's read", reads.result())):
            assert set(answers.statuses) == {200}, f"{name}: {answers.statuses}"
            p99 = answers.p99()
            print(f"{name}: {len(answers.took)} answers, p99 {p99 * 1000:.0f} ms")
            assert p99 < scaled(STARVED), f"{name}: p99 {p99:.2f} s"
        print(f"A: {len(refused)} refused; B: {dict(flooded.statuses)}")

        # The held waits were held all along, and answer once the rollout completes.
        held = [w for w in waits if not w.done()]
        assert len(held) == cap
        complete_rollout(apps, alice_ns)
        for wait in held:
            answer = wait.result(timeout=scaled(60))
            assert answer.status_code == 200, answer.text
