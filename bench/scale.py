"""Scale: reads at 10,000 provisioned tenants (quick: 1,000) on PostgreSQL and on SQLite.

Targets (issue 7): a tenant's namespace list p99 <= 25 ms, its dashboard p99 <= 100 ms, the
operators' paginated tenant list p99 <= 100 ms (the API and the /admin page), Kuberth's resident
memory <= 300 MB, and a change in the cluster visible in what Kuberth serves within 1 s. Issue 16
adds every read at 8 concurrent clients: p99 <= 100 ms.

How it runs, against one control plane, for both databases:

1. ``SMALL`` (100) tenants are provisioned in every database by Kuberth's own service layer
   in-process (``UserService.sign_in`` from a thread pool: the OAuth callback's path minus HTTP).
   The PostgreSQL pass creates the namespaces; the SQLite pass signs the same GitHub users in again,
   which adopts them by their owner label, so the cluster holds each tenant once.
2. Per database, ``kuberth serve`` starts as its own process; a tenant (with two apps) and an
   operator sign in through the real OAuth flow (GitHub stand-in) for a session cookie and an API
   token; every read is timed 200 (full: 1,000) times one after the other, then at concurrency 8.
3. The databases are filled up to the full size the same way, and every figure is measured again
   on a freshly started ``kuberth serve`` (its start-up pass over every tenant included), for the
   same tenant and operator with the same session and token.

Each figure's baseline is the same read for the same caller at ``SMALL`` tenants in the same run,
so the ratio is what 10 (quick) or 100 (full) times more tenants cost. 100, not fewer, so that the
baseline's pages of the operators' list are as full as at the full size (a shorter page is cheaper
for reasons that have nothing to do with scale); and only full pages are read, at either size (the
last, shorter page is left out). The baseline is measured before the databases are filled up, so
the two sizes are not interleaved: the load averages in the details show what each met. A direct
API-server read would not do as a baseline: these reads join the database and the cluster, and
the operators' list has no API-server equivalent. The targets are on the values; the ratios show
what grows with scale.

Rows time a change made in Kubernetes behind Kuberth's back (with the admin client) until it
shows in what Kuberth serves from its watch-fed copies, from just before the write is sent:
a tenant quota's ``hard.pods`` in the operators' list, and an app's Deployment appearing on and
then leaving the tenant's dashboard. Each is sampled VISIBILITY_SAMPLES times (the Deployment:
that many made and deleted, two samples each); the rows give the p50 and the max.

The machine is shared and small (2 cores, with the control plane and often other work on it): the
load averages before each read are in the report's details, and a p99 of a few hundred requests
moves with them. At concurrency 8, 8 clients on 2 cores also measure queueing; the target (issue
16) is that the queue stays short: each read's p99 <= 100 ms.

With ``BENCH_PROFILE=1`` and py-spy installed in the environment (not a dependency), every timed
read is also sampled with ``py-spy record`` into artifacts/bench/scale-profile-*.txt (collapsed
stacks; the report's details list each profile's hottest frames).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config
from tests.integration.signin import authorize

from bench.report import ARTIFACTS, Report, Row, measured, p
from bench.stack import (
    Cleanup,
    cpu_seconds,
    delete_namespaces,
    kuberth_server,
    percentile,
    postgres,
    rss_mib,
    say,
)
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import GitHubStandIn, StandInServer
from kuberth.exceptions import KuberthError
from kuberth.http.app import SESSION_COOKIE
from kuberth.http.services import Services, build_services
from kuberth.services.builders.tenant import BASELINE_NAME, OWNER_ID
from kuberth.services.builders.workloads import KUBERTH_APP
from kuberth.settings import Settings
from kuberth.storage.github import GitHubUser

SMALL = 100  # a full page of the operators' list, so the baseline pages are as long
CONCURRENCY = 8
POPULATE_WORKERS = 8
ADMIN_PAGE = 100  # the API's page; the /admin page shows 50
VISIBLE_WITHIN = 1.0
VISIBILITY_SAMPLES = 5
#: A change not shown after this long, or this many reads, is a failed sample.
VISIBILITY_TIMEOUT = 30.0
VISIBILITY_MAX_POLLS = 20_000
TARGETS = {"namespaces": 25.0, "dashboard": 100.0, "admin tenants": 100.0, "admin page": 100.0}
CONCURRENT_TARGET = 100.0  # every read's p99 at CONCURRENCY clients (issue 16)
RSS_LIMIT_MIB = 300 * 1000**2 / 1024**2  # 300 MB


@dataclass
class Caller:
    """A user signed in through OAuth: its API token and its session cookie."""

    github_id: int
    login: str
    namespace: str
    token: str
    cookie: str


@dataclass
class Backend:
    name: str
    url: str
    secret: str
    log: Path
    admin_id: int = field(default_factory=lambda: 20_000_000 + secrets.randbelow(10**9))
    services: Services | None = None
    tenant: Caller | None = None
    admin: Caller | None = None
    populate_s: dict[int, float] = field(default_factory=dict)


@dataclass
class Phase:
    """Everything measured on one server at one size."""

    tenants: int
    #: Milliseconds of the reads that answered 200 and how many did not, by read ("dashboard",
    #: "dashboard concurrent", ...).
    samples: dict[str, list[float]] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    rss_start: float = 0.0
    rss_end: float = 0.0
    visible_s: list[float] = field(default_factory=list)
    dashboard_visible_s: list[float] = field(default_factory=list)
    visibility_failed: dict[str, int] = field(default_factory=dict)
    loadavg: dict[str, list[float]] = field(default_factory=dict)
    profiles: dict[str, list[str]] = field(default_factory=dict)


def run(kubeconfig: Path, quick: bool) -> list[Report]:
    size = 1_000 if quick else 10_000
    requests = 200 if quick else 1_000
    users = [
        (20_000_000 + secrets.randbelow(10**9), f"sc{secrets.token_hex(5)}") for _ in range(size)
    ]
    github_ids = {i for i, _ in users}
    work = Path(tempfile.mkdtemp(prefix="kuberth-bench-scale-"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    reports: list[Report] = []
    try:
        with contextlib.ExitStack() as stack:
            github = StandInServer(GitHubStandIn(), port=free_port()).start()
            stack.callback(github.stop)
            backends = [
                Backend(
                    "postgresql",
                    stack.enter_context(postgres()),
                    secrets.token_urlsafe(32),
                    ARTIFACTS / "scale-server-postgresql.log",
                ),
                Backend(
                    "sqlite",
                    f"sqlite:///{work}/kuberth.db",
                    secrets.token_urlsafe(32),
                    ARTIFACTS / "scale-server-sqlite.log",
                ),
            ]
            for backend in backends:
                backend.services = build_services(
                    Settings(
                        kubeconfig=kubeconfig,
                        database_url=backend.url,
                        secret_key=backend.secret,
                    )
                )
                stack.callback(_close, backend.services)
            backends[0].services.provisioner.ensure_cluster_objects()  # type: ignore[union-attr]

            small: dict[str, Phase] = {}
            for backend in backends:
                backend.populate_s[SMALL] = populate(backend, users[:SMALL])
            for backend in backends:
                small[backend.name] = measure(
                    backend, kubeconfig, github, github_ids, SMALL, requests, first=True
                )
            large: dict[str, Phase] = {}
            for backend in backends:
                backend.populate_s[size] = populate(backend, users[SMALL:])
            for backend in backends:
                large[backend.name] = measure(
                    backend, kubeconfig, github, github_ids, size, requests, first=False
                )
            for backend in backends:
                reports.append(
                    _report(backend, small[backend.name], large[backend.name], quick, requests)
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if Cleanup.wait:
            say(f"deleting {delete_namespaces(kubeconfig, github_ids)} tenant namespaces")
            left = wait_gone(kubeconfig, github_ids, timeout=300 if quick else 60)
            if reports:
                reports[0].details["namespaces_left_terminating"] = left
    return reports


# -- populating -----------------------------------------------------------------------------------


def populate(backend: Backend, users: list[tuple[int, str]]) -> float:
    """Sign these users in through the service layer, POPULATE_WORKERS at a time; seconds."""
    services = backend.services
    assert services is not None

    def one(user: tuple[int, str]) -> None:
        for attempt in range(5):
            try:
                services.users.sign_in(GitHubUser(user[0], user[1], None))
                return
            except KuberthError:
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)

    say(f"{backend.name}: provisioning {len(users)} tenants in-process")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=POPULATE_WORKERS) as pool:
        for done, _ in enumerate(pool.map(one, users), start=1):
            if done % 1000 == 0:
                say(f"  {done}/{len(users)} in {time.monotonic() - started:.0f} s")
    elapsed = time.monotonic() - started
    say(f"{backend.name}: {len(users)} tenants in {elapsed:.1f} s")
    return elapsed


def _close(services: Services) -> None:
    services.kubernetes.close()
    services.database.engine.dispose()


# -- measuring ------------------------------------------------------------------------------------


def measure(
    backend: Backend,
    kubeconfig: Path,
    github: StandInServer,
    github_ids: set[int],
    tenants: int,
    requests: int,
    *,
    first: bool,
) -> Phase:
    """Start ``kuberth serve`` on the backend's database and time every read."""
    phase = Phase(tenants)
    log = backend.log.with_name(f"{backend.log.stem}-{tenants}.log")
    with contextlib.ExitStack() as stack:
        admin_ids = json.dumps([backend.admin_id])
        url, pid = stack.enter_context(
            kuberth_server(
                kubeconfig,
                backend.url,
                github,
                log,
                settings={"admin_github_ids": admin_ids, "secret_key": backend.secret},
            )
        )
        settle(pid)
        phase.rss_start = rss_mib(pid)
        phase.loadavg["start"] = _loadavg()
        if first:
            backend.tenant = sign_in(url, github, 20_000_000 + secrets.randbelow(10**9))
            backend.admin = sign_in(url, github, backend.admin_id)
            github_ids.update({backend.tenant.github_id, backend.admin.github_id})
            for app in ("shop", "blog"):
                _create_app(url, backend.tenant, app)
            time.sleep(5)  # the apps' pods start: not a state worth timing
            settle(pid)
        tenant, admin = backend.tenant, backend.admin
        assert tenant is not None
        assert admin is not None
        total = tenants + 4  # the tenants and operators signed in through OAuth, both databases
        pages = max(1, total // ADMIN_PAGE)  # full pages only: a short one is cheaper
        reads: dict[str, Callable[[httpx.Client, int], httpx.Response]] = {
            "namespaces": lambda http, _: http.get("/api/v1/namespaces", headers=_bearer(tenant)),
            "dashboard": lambda http, _: http.get("/dashboard", cookies=_cookie(tenant)),
            "admin tenants": lambda http, i: http.get(
                "/api/v1/admin/tenants",
                params={"offset": (i % pages) * ADMIN_PAGE, "limit": ADMIN_PAGE},
                headers=_bearer(admin),
            ),
            "admin page": lambda http, i: http.get(
                "/admin", params={"offset": (i % (2 * pages)) * 50}, cookies=_cookie(admin)
            ),
        }
        for name, read in reads.items():
            phase.loadavg[name] = _loadavg()
            with _profile(pid, f"{backend.name}-{tenants}-{name}", phase.profiles):
                timings, phase.failed[name] = timed(url, read, requests, 1)
            phase.samples[name] = timings
            with _profile(pid, f"{backend.name}-{tenants}-{name}-concurrent", phase.profiles):
                concurrent, phase.failed[f"{name} concurrent"] = timed(
                    url, read, requests, CONCURRENCY
                )
            phase.samples[f"{name} concurrent"] = concurrent
            say(
                f"  {backend.name} at {tenants}: {name} p50 {percentile(timings, 50):.1f} ms, "
                f"p99 {percentile(timings, 99):.1f} ms, "
                f"p99 at {CONCURRENCY} {percentile(concurrent, 99):.1f}"
            )
        phase.visible_s, phase.visibility_failed["quota"] = visibility(
            url, kubeconfig, tenant, admin
        )
        phase.dashboard_visible_s, phase.visibility_failed["dashboard"] = dashboard_visibility(
            url, kubeconfig, tenant
        )
        phase.rss_end = rss_mib(pid)
        phase.loadavg["end"] = _loadavg()
    return phase


def timed(
    url: str, read: Callable[[httpx.Client, int], httpx.Response], count: int, concurrency: int
) -> tuple[list[float], int]:
    """Milliseconds of each of ``count`` reads that answered 200, ``concurrency`` clients at a
    time, and how many did not (left out of the milliseconds)."""

    def client_loop(offset: int) -> tuple[list[float], int]:
        out, failed = [], 0
        with httpx.Client(base_url=url, timeout=60) as http:
            read(http, offset).raise_for_status()  # warm the connection
            for i in range(offset, count, concurrency):
                started = time.perf_counter()
                try:
                    response = read(http, i)
                except httpx.HTTPError as error:
                    say(f"  read failed: {error}")
                    failed += 1
                    continue
                if response.status_code != 200:
                    say(f"  read failed: {response.status_code} {response.text[:300]}")
                    failed += 1
                    continue
                out.append((time.perf_counter() - started) * 1000)
        return out, failed

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        parts = list(pool.map(client_loop, range(concurrency)))
    return [ms for part, _ in parts for ms in part], sum(failed for _, failed in parts)


def visibility(
    url: str, kubeconfig: Path, tenant: Caller, admin: Caller
) -> tuple[list[float], int]:
    """Seconds from just before a change of a tenant quota in Kubernetes to the operators' list
    showing it, VISIBILITY_SAMPLES times; and how many changes did not show in time.

    Polled on a one-tenant page, so each poll is short next to what it measures.
    """
    with httpx.Client(base_url=url, timeout=60, headers=_bearer(admin)) as http:

        def page(offset: int, limit: int) -> list[dict[str, Any]]:
            response = http.get("/api/v1/admin/tenants", params={"offset": offset, "limit": limit})
            response.raise_for_status()
            items: list[dict[str, Any]] = response.json()["items"]
            return items

        offset = _position(page, tenant.github_id)

        def shown() -> str | None:
            (mine,) = page(offset, 1)
            assert mine["github_id"] == tenant.github_id
            hard: str | None = mine["usage"].get("pods", {}).get("hard")
            return hard

        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            str(kubeconfig)
        )
        try:
            core = client.CoreV1Api(api)
            samples: list[float] = []
            for _ in range(VISIBILITY_SAMPLES):
                wanted = str(int(shown() or "0") + 1)
                started = time.monotonic()
                core.patch_namespaced_resource_quota(
                    BASELINE_NAME, tenant.namespace, {"spec": {"hard": {"pods": wanted}}}
                )
                samples += _until(_equals(shown, wanted), started)
            return samples, VISIBILITY_SAMPLES - len(samples)
        finally:
            api.close()  # type: ignore[no-untyped-call]


def _position(page: Callable[[int, int], list[dict[str, Any]]], github_id: int) -> int:
    """Where the tenant is in the operators' list."""
    offset = 0
    while True:
        items = page(offset, 500)
        ids = [t["github_id"] for t in items]
        if github_id in ids:
            return offset + ids.index(github_id)
        if not items:
            raise RuntimeError("the tenant is not in the operators' list")
        offset += 500


def _equals(read: Callable[[], str | None], wanted: str) -> Callable[[], bool]:
    return lambda: read() == wanted


def _negated(condition: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: not condition()


def _until(condition: Callable[[], bool], started: float) -> list[float]:
    """[seconds from ``started`` until ``condition`` holds], or [] if it does not within
    VISIBILITY_TIMEOUT s or VISIBILITY_MAX_POLLS checks (a failed sample)."""
    for _ in range(VISIBILITY_MAX_POLLS):
        if condition():
            return [time.monotonic() - started]
        if time.monotonic() - started > VISIBILITY_TIMEOUT:
            break
    say("  a change did not show in time")
    return []


def dashboard_visibility(url: str, kubeconfig: Path, tenant: Caller) -> tuple[list[float], int]:
    """Seconds from just before an app's Deployment is made in Kubernetes behind Kuberth's back
    until it shows on the tenant's dashboard, and from just before its deletion until it has
    left; VISIBILITY_SAMPLES times each way. Also how many did not follow in time."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(kubeconfig)
    )
    apps = client.AppsV1Api(api)
    samples: list[float] = []
    try:
        with httpx.Client(base_url=url, timeout=60, cookies=_cookie(tenant)) as http:
            for _ in range(VISIBILITY_SAMPLES):
                probe = f"probe{secrets.token_hex(3)}"
                link = f'href="/namespaces/{tenant.namespace}/apps/{probe}"'

                def shown(link: str = link) -> bool:
                    return link in http.get("/dashboard").text

                started = time.monotonic()
                apps.create_namespaced_deployment(tenant.namespace, _probe(probe))
                samples += _until(shown, started)
                started = time.monotonic()
                apps.delete_namespaced_deployment(probe, tenant.namespace)
                samples += _until(_negated(shown), started)
    finally:
        api.close()  # type: ignore[no-untyped-call]
    return samples, 2 * VISIBILITY_SAMPLES - len(samples)


def _probe(name: str) -> client.V1Deployment:
    """An app's Deployment with no replicas, as Kuberth labels its apps."""
    labels = {KUBERTH_APP: name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=0,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="nginx:1.27")]
                ),
            ),
        ),
    )


def sign_in(url: str, github: StandInServer, github_id: int) -> Caller:
    """The real OAuth flow, then an API token from the session."""
    login = f"sc{secrets.token_hex(5)}"
    with httpx.Client(base_url=url, timeout=120) as browser:
        signed_in = browser.get(authorize(browser, github, login=login, user_id=github_id))
        if signed_in.status_code != 302:
            raise RuntimeError(f"sign-in of {login}: {signed_in.status_code} {signed_in.text}")
        me = browser.get("/api/v1/me")
        me.raise_for_status()
        created = browser.post(
            "/api/v1/tokens",
            json={"name": "scale", "expires_in_days": 1},
            headers={"X-CSRF-Token": me.json()["csrf_token"]},  # a write with the cookie
        )
        created.raise_for_status()
        cookie = browser.cookies.get(SESSION_COOKIE)
        assert cookie is not None
    namespace = me.json()["namespaces"][0]["name"]
    return Caller(github_id, login, namespace, created.json()["token"], cookie)


def _create_app(url: str, tenant: Caller, name: str) -> None:
    response = httpx.post(
        f"{url}/api/v1/namespaces/{tenant.namespace}/apps",
        json={"name": name, "image": "nginx:1.27", "port": 80},
        headers=_bearer(tenant),
        timeout=60,
    )
    if response.status_code != 201:
        raise RuntimeError(f"app {name}: {response.status_code} {response.text}")


def _bearer(caller: Caller) -> dict[str, str]:
    return {"Authorization": f"Bearer {caller.token}"}


def _cookie(caller: Caller) -> dict[str, str]:
    return {SESSION_COOKIE: caller.cookie}


def settle(pid: int, timeout: float = 180.0) -> None:
    """Wait until the server's start-up work (the reconciler's pass) is over: under 5% of a core
    for two seconds in a row."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        before = cpu_seconds(pid)
        time.sleep(1)
        quiet = quiet + 1 if cpu_seconds(pid) - before < 0.05 else 0


def wait_gone(kubeconfig: Path, github_ids: set[int], timeout: float) -> int:
    """Wait for the tenants' namespaces to be gone; returns how many are left."""
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(kubeconfig)
    )
    owners = {str(i) for i in github_ids}
    try:
        core = client.CoreV1Api(api)
        deadline = time.monotonic() + timeout
        while True:
            found = core.list_namespace(label_selector=OWNER_ID).items
            left = len([ns for ns in found if _owner(ns) in owners])
            if left == 0 or time.monotonic() > deadline:
                say(f"{left} tenant namespaces still terminating")
                return left
            time.sleep(5)
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _owner(namespace: client.V1Namespace) -> str:
    labels = (namespace.metadata.labels if namespace.metadata else None) or {}
    return str(labels.get(OWNER_ID, ""))


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@contextlib.contextmanager
def _profile(pid: int, name: str, into: dict[str, list[str]]) -> Iterator[None]:
    """py-spy on the server while the block runs, when BENCH_PROFILE is set."""
    spy = str(Path(sys.executable).with_name("py-spy"))
    if not os.environ.get("BENCH_PROFILE") or not Path(spy).exists():
        yield
        return
    out = ARTIFACTS / f"scale-profile-{name.replace(' ', '-')}.txt"
    process = subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(out),
            "--rate",
            "250",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    try:
        yield
    finally:
        process.send_signal(2)
        process.wait(timeout=60)
    into[name] = _hottest(out)


def _hottest(path: Path, top: int = 12) -> list[str]:
    """The frames with the most samples anywhere on the stack (inclusive), as 'share frame'."""
    if not path.exists():
        return []
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        for frame in set(stack.split(";")):
            if "kuberth" in frame or "sqlalchemy" in frame or "jinja" in frame:
                inclusive[frame] += int(count)
    return [f"{n / total:.0%} {frame}" for frame, n in inclusive.most_common(top)] if total else []


# -- the report -----------------------------------------------------------------------------------


def _report(backend: Backend, small: Phase, large: Phase, quick: bool, requests: int) -> Report:
    report = Report(f"scale-{backend.name}", "quick" if quick else "full")
    n = large.tenants
    for name, limit in TARGETS.items():
        _read_rows(report, name, limit, small, large, requests)
    for when, large_rss, small_rss in (
        ("start", large.rss_start, small.rss_start),
        ("the reads", large.rss_end, small.rss_end),
    ):
        report.add(
            Row(
                f"RSS after {when} at {n} tenants",
                round(large_rss, 1),
                "MiB",
                baseline=round(small_rss, 1),
                target=f"<= {RSS_LIMIT_MIB:.0f}",
            )
        )
    for key, label, note in (
        ("quota", "quota change visible in the operators' list", "a quota patched"),
        ("dashboard", "app change visible on the dashboard", "a Deployment made, then deleted"),
    ):
        _visibility_rows(report, f"{label} at {n}", key, small, large, note)
    populated = n - SMALL
    seconds = backend.populate_s[n]
    report.add(
        Row(
            f"provisioning {populated} tenants in-process",
            round(seconds, 1),
            "s",
            note=f"{populated / seconds:.1f} tenants/s with {POPULATE_WORKERS} threads"
            + ("; adopts the namespaces made for PostgreSQL" if backend.name == "sqlite" else ""),
        )
    )
    report.details.update(
        {
            "tenants": n,
            "baseline_tenants": SMALL,
            "requests": requests,
            "concurrency": CONCURRENCY,
            "visibility_s": {
                "small": {"quota": small.visible_s, "dashboard": small.dashboard_visible_s},
                "large": {"quota": large.visible_s, "dashboard": large.dashboard_visible_s},
            },
            "loadavg": {"small": small.loadavg, "large": large.loadavg},
            "populate_seconds": {str(k): round(v, 1) for k, v in backend.populate_s.items()},
            "profiles": {**small.profiles, **large.profiles},
        }
    )
    return report


def _read_rows(
    report: Report, name: str, limit: float, small: Phase, large: Phase, requests: int
) -> None:
    """p99 (against the target), p50, and p99 with CONCURRENCY clients of one read."""
    n = large.tenants
    concurrent = f"{name} concurrent"
    for label, key, q, target, note in (
        (
            f"{name} p99 at {n} tenants",
            name,
            99,
            f"<= {limit:g}",
            f"sequential, {requests} "
            f"requests; baseline at {SMALL} tenants, measured first (not interleaved)",
        ),
        (f"{name} p50 at {n} tenants", name, 50, None, ""),
        (
            f"{name} p99 at {n}, {CONCURRENCY} clients",
            concurrent,
            99,
            f"<= {CONCURRENT_TARGET:g}",
            f"{CONCURRENCY} clients, {requests} requests in all; 2 cores shared with the "
            f"control plane; baseline at {SMALL} tenants",
        ),
    ):
        report.add(
            measured(
                label,
                "ms",
                p(q),
                large.samples[key],
                small.samples[key],
                failed=large.failed[key],
                baseline_failed=small.failed[key],
                target=target,
                note=note,
            )
        )


def _visibility_rows(
    report: Report, label: str, key: str, small: Phase, large: Phase, note: str
) -> None:
    """p50 and max of the seconds a change took to show, at both sizes."""
    samples = {"quota": (large.visible_s, small.visible_s)}
    samples["dashboard"] = (large.dashboard_visible_s, small.dashboard_visible_s)
    for statistic, name in ((p(50), "p50"), (max, "max")):
        report.add(
            measured(
                f"{label}, {name}",
                "s",
                statistic,
                *samples[key],
                failed=large.visibility_failed[key],
                baseline_failed=small.visibility_failed[key],
                target=f"<= {VISIBLE_WITHIN:g}",
                note=f"{note} with the admin client, timed from before the write; "
                f"baseline at {SMALL} tenants",
            )
        )
