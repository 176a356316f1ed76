"""Sign-up: from GitHub's redirect to Kuberth's callback until the tenant is fully provisioned.

Kuberth: first sign-ins of new users through the real OAuth flow (the GitHub stand-in), timing
the callback request, which covers the code exchange, GET /user, the sign-up rules, creating the
namespace and applying its 4 baseline objects, and the database. Then sustained first sign-ins
(the whole flow, each user new) with 8 concurrent users.

Baseline: the unavoidable Kubernetes work alone, sent straight to the API server as the same
cluster-admin service account Kuberth runs as: create the namespace and server-side apply the
same 4 baseline objects (the manifests of ``kuberth.services.builders.tenant``), sequentially and
then from 8 threads. The ratio is Kuberth's overhead over that.

API-server requests per sign-up are counted as in ``bench.deletion`` (a FlowSchema for Kuberth's
service account). Three warm-up sign-ups each way are not measured. The two sides alternate:
sign-up by sign-up when sequential, and in LOAD_ROUNDS windows each (Kuberth's first, then the
baseline's, and so on) under load. Both databases; quick: 20 sequential sign-ups and 2 windows
of 2 s per side, full: 100 and 4 of 15 s. (Every sign-up leaves a namespace the namespace
controller then takes a while to delete, a few per second: most of quick mode's time.)
Kuberth serves HTTPS here (``bench.tls_serve``, a certificate of the run's), as the API server
does: both sides over TLS. Each sign-up is a new browser, so Kuberth's side also pays a TLS
handshake per sign-up (as a real browser would); the baseline keeps its one connection.
Set ``BENCH_PROFILE=1`` (with py-spy on PATH) to record where Kuberth's time goes during the
load, as artifacts/bench/signup-*-profile.txt.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from bench.deletion import (
    TLS,
    RequestCounter,
    api_client,
    counted_identity,
    loadavg,
    wait_gone,
)
from bench.report import ARTIFACTS, Report, Row, measured, p
from bench.stack import cpu_seconds, databases, kuberth_server, percentile, say, self_signed
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import GitHubStandIn, StandInServer
from kuberth.exceptions import KuberthError
from kuberth.services.builders import tenant
from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import APPLY_PATCH, FIELD_MANAGER, KubernetesApi

CONCURRENCY = 8
WARM_UP = 3
REQUEST_SAMPLES = 5
#: Windows of load per side, and each window's seconds (quick, full).
LOAD_ROUNDS = {True: 2, False: 4}
LOAD_SECONDS = {True: 2.0, False: 15.0}
TRANSPORT = "both over TLS"
#: A worker's sign-ups per window at most (a sign-up takes tens of milliseconds).
MAX_PER_WORKER = 10_000


def new_id() -> int:
    return 10_000_000 + secrets.randbelow(10**9)


class SignUps:
    """First sign-ins through the real OAuth flow, as tests.integration.signin.authorize does."""

    def __init__(self, url: str, github: StandInServer, trust: ssl.SSLContext) -> None:
        self._url = url
        self._trust = trust
        self._github = github
        self._approver = httpx.Client(base_url=github.url, timeout=60, verify=TLS)

    def one(self, github_id: int) -> float:
        """A new user signs in; returns the callback's milliseconds (the figure measured)."""
        login = f"su{secrets.token_hex(5)}"
        with httpx.Client(base_url=self._url, timeout=60, verify=self._trust) as browser:
            start = browser.get("/auth/github/login")
            location = urlsplit(start.headers["location"])
            approved = self._approver.post(
                "/login/oauth/authorize",
                data={**dict(parse_qsl(location.query)), "login": login, "user_id": github_id},
            )
            if approved.status_code != 302:
                raise RuntimeError(f"GitHub stand-in: {approved.status_code} {approved.text}")
            callback = urlsplit(approved.headers["location"])
            started = time.perf_counter()
            response = browser.get(f"{callback.path}?{callback.query}")
            elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 302:
            raise RuntimeError(f"sign-in of {login}: {response.status_code} {response.text[:300]}")
        return elapsed

    def close(self) -> None:
        self._approver.close()


class DirectProvisioner:
    """The baseline: a tenant namespace and its baseline objects, straight to the API server."""

    def __init__(self, kubeconfig: Path) -> None:
        settings = Settings()
        self._policy = tenant.TenantPolicy(
            quota=settings.tenant_quota,
            default_requests=settings.tenant_default_requests,
            default_limits=settings.tenant_default_limits,
            pod_security_level=settings.pod_security_level,
            ingress_controller_namespace=settings.ingress_controller_namespace,
            egress=settings.tenant_egress,
            egress_blocked_cidrs=settings.tenant_egress_blocked_cidrs,
        )
        self._client = api_client(kubeconfig)
        self._api = KubernetesApi(self._client, timeout=30, retry_after=5)

    def provision(self, github_id: int) -> float:
        """Create + 4 applies, as Kuberth's provisioning sends them; returns milliseconds."""
        name = f"sb{secrets.token_hex(5)}"
        namespace = tenant.namespace(
            name,
            github_id=github_id,
            login=name,
            personal=True,
            policy=self._policy,
        )
        started = time.perf_counter()
        self._api.request("POST", "/api/v1/namespaces", body=namespace)
        for manifest in tenant.baseline(name, github_id=github_id, policy=self._policy):
            group, _, version = manifest["apiVersion"].rpartition("/")
            prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
            plural = {
                "ResourceQuota": "resourcequotas",
                "LimitRange": "limitranges",
                "NetworkPolicy": "networkpolicies",
                "RoleBinding": "rolebindings",
            }[manifest["kind"]]
            self._api.request(
                "PATCH",
                f"{prefix}/namespaces/{name}/{plural}/{manifest['metadata']['name']}",
                query={"fieldManager": FIELD_MANAGER, "force": True},
                body=manifest,
                content_type=APPLY_PATCH,
            )
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self._api.close()


@dataclass
class Load:
    """What 8 concurrent workers did in windows adding up to ``duration`` seconds."""

    duration: float = 0.0
    windows: int = 0
    done: int = 0  # finished before the deadline
    late: int = 0  # started before it, finished after
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return round(self.done / self.duration, 2)


def cpu_by_process(kubeconfig: Path, kuberth_pid: int) -> dict[str, float]:
    """CPU seconds used so far by Kuberth, this process and the local plane's components."""
    pids = {"kuberth": kuberth_pid, "bench": os.getpid()}
    state = kubeconfig.parent / "state.json"
    if state.exists():
        pids.update(json.loads(state.read_text()).get("pids", {}))
    used = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            used[name] = cpu_seconds(pid)
    return used


def sustained(
    load: Load,
    duration: float,
    counter: RequestCounter,
    one: Callable[[int], float],
    ids: set[int],
    cpu: Callable[[], dict[str, float]],
) -> None:
    """Run ``one`` (a sign-up or a direct provisioning) from 8 threads for ``duration`` s, and
    add what they did to ``load``."""
    load.duration += duration
    load.windows += 1
    lock = threading.Lock()
    before = counter.count()
    cpu_before = cpu()
    deadline = time.monotonic() + duration

    def worker() -> None:
        for _ in range(MAX_PER_WORKER):
            if time.monotonic() >= deadline:
                break
            github_id = new_id()
            with lock:
                ids.add(github_id)
            try:
                ms = one(github_id)
            except (RuntimeError, KuberthError, httpx.HTTPError, OSError) as error:
                with lock:
                    load.errors.append(str(error)[:300])
                continue
            with lock:
                load.latencies.append(ms)
                if time.monotonic() <= deadline:
                    load.done += 1
                else:
                    load.late += 1

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for future in [pool.submit(worker) for _ in range(CONCURRENCY)]:
            future.result()
    load.requests += counter.count() - before
    for name, used in cpu().items():
        load.cpu_s[name] = round(load.cpu_s.get(name, 0.0) + used - cpu_before.get(name, used), 2)


@contextlib.contextmanager
def profiled(pid: int, name: str, seconds: float) -> Iterator[None]:
    """With BENCH_PROFILE=1 and py-spy on PATH: sample Kuberth's process meanwhile."""
    spy = shutil.which("py-spy")
    if not os.environ.get("BENCH_PROFILE") or spy is None:
        yield
        return
    output = ARTIFACTS / f"{name}-profile.txt"
    command = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"]
    command += ["--format", "raw", "--output", str(output), "--nonblocking"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.wait(timeout=seconds + 60)
        say(f"profile of Kuberth during {name}: {output}")


def run_database(
    kubeconfig: Path, counter: RequestCounter, database: str, database_url: str, quick: bool
) -> Report:
    count = 20 if quick else 100
    rounds, seconds = LOAD_ROUNDS[quick], LOAD_SECONDS[quick]
    report = Report(f"signup-{database}", "quick" if quick else "full")
    report.details["loadavg"] = {"start": loadavg()}
    ids: set[int] = set()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:  # undone in reverse: the namespaces go last
        stack.callback(lambda: report.details.update(cleanup_s=wait_gone(kubeconfig, ids)))
        github = StandInServer(GitHubStandIn(), port=free_port()).start()
        stack.callback(github.stop)
        direct = DirectProvisioner(counter.kubeconfig)
        stack.callback(direct.close)
        tls = stack.enter_context(self_signed())
        url, pid = stack.enter_context(
            kuberth_server(
                counter.kubeconfig,
                database_url,
                github,
                ARTIFACTS / f"signup-{database}-server.log",
                settings={"reconcile_interval": "0"},
                tls=tls,
            )
        )
        signups = SignUps(url, github, tls.context)
        stack.callback(signups.close)

        def both(count: int) -> tuple[list[float], list[float]]:
            """Kuberth and the baseline one after the other, so both see the same load."""
            kuberth_ms, direct_ms = [], []
            for _ in range(count):
                ids.update(i := (new_id(), new_id()))
                kuberth_ms.append(signups.one(i[0]))
                direct_ms.append(direct.provision(i[1]))
            return kuberth_ms, direct_ms

        # Warm-up; then the requests one sign-up takes (reading /metrics is a 4 MB answer, so
        # not around every sign-up that is timed).
        both(WARM_UP)
        before = counter.count()
        for _ in range(REQUEST_SAMPLES):
            ids.add(i := new_id())
            signups.one(i)
        middle = counter.count()
        for _ in range(REQUEST_SAMPLES):
            ids.add(i := new_id())
            direct.provision(i)
        requests = (
            (middle - before) / REQUEST_SAMPLES,
            (counter.count() - middle) / REQUEST_SAMPLES,
        )
        kuberth_ms, direct_ms = both(count)
        report.details["loadavg"]["sequential"] = loadavg()
        say(f"signup ({database}): {count} sequential, load {loadavg()}")

        def cpu() -> dict[str, float]:
            return cpu_by_process(kubeconfig, pid)

        kuberth_load, direct_load = Load(), Load()
        with profiled(pid, f"signup-{database}", 2 * rounds * seconds):
            for _ in range(rounds):
                sustained(kuberth_load, seconds, counter, signups.one, ids, cpu)
                sustained(direct_load, seconds, counter, direct.provision, ids, cpu)
        report.details["loadavg"]["load"] = loadavg()
        say(f"signup ({database}): {kuberth_load.per_second}/s, load {loadavg()}")
    _rows(report, (kuberth_ms, direct_ms), (kuberth_load, direct_load), requests)
    report.details.update(
        {
            "sequential": {"count": count, "kuberth_ms": kuberth_ms, "direct_ms": direct_ms},
            "load": {
                way: {
                    "seconds": load.duration,
                    "windows": load.windows,
                    "done": load.done,
                    "finished_after_deadline": load.late,
                    "errors": len(load.errors),
                    "error_samples": load.errors[:5],
                    "p99_ms": round(percentile(load.latencies, 99), 1),
                    "cpu_s": load.cpu_s,  # the plane's: other users of it included
                    "kuberth_cpu_ms_per_item": round(
                        1000 * load.cpu_s.get("kuberth", 0) / max(1, load.done + load.late), 1
                    ),
                    "requests_per_item": round(
                        load.requests / max(1, load.done + load.late + len(load.errors)), 2
                    ),
                }
                for way, load in (("kuberth", kuberth_load), ("direct", direct_load))
            },
        }
    )
    return report


def _rows(
    report: Report,
    sequential: tuple[list[float], list[float]],
    loads: tuple[Load, Load],
    requests: tuple[float, float],
) -> None:
    kuberth_load, direct_load = loads
    window = f"{kuberth_load.windows} x {kuberth_load.duration / max(kuberth_load.windows, 1):g} s"
    report.add(
        measured(
            "callback p50 (sequential first sign-ins)",
            "ms",
            p(50),
            *sequential,
            target="<= 250",
            note=f"baseline: create + 4 applies straight to the API server; {TRANSPORT}",
        )
    )
    report.add(measured("callback p99 (sequential)", "ms", p(99), *sequential))
    report.add(
        Row(
            f"first sign-ins per second, {CONCURRENCY} concurrent users",
            kuberth_load.per_second if kuberth_load.done else None,
            "/s",
            baseline=direct_load.per_second if direct_load.done else None,
            target=">= 20",
            note=f"windows of {window} per side, interleaved; baseline: direct provisioning "
            f"from as many threads; {TRANSPORT}",
            samples=kuberth_load.done,
            failed=len(kuberth_load.errors),
            baseline_samples=direct_load.done,
            baseline_failed=len(direct_load.errors),
        )
    )
    report.add(
        measured(
            f"callback p50 under load ({CONCURRENCY} concurrent)",
            "ms",
            p(50),
            kuberth_load.latencies,
            direct_load.latencies,
            failed=len(kuberth_load.errors),
            baseline_failed=len(direct_load.errors),
        )
    )
    report.add(
        Row(
            "API requests per sign-up",
            round(requests[0], 2),
            "req",
            baseline=round(requests[1], 2),
            note=f"mean of {REQUEST_SAMPLES} each",
            samples=REQUEST_SAMPLES,
            baseline_samples=REQUEST_SAMPLES,
        )
    )


def run(kubeconfig: Path, quick: bool) -> list[Report]:
    reports = []
    with counted_identity(kubeconfig) as counter:
        for database, url in databases("kuberth-bench-signup-"):
            reports.append(run_database(kubeconfig, counter, database, url, quick))
    return reports
