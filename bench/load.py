"""Bounded load test on loopback: many tenants, concurrent API clients, latency and memory.

Starts a throwaway PostgreSQL, the GitHub stand-in and Kuberth (`python -m kuberth serve`, a
process of its own, production settings) against the local control plane (``KUBECONFIG`` if set,
else a fresh plane in a temporary directory), signs up ``--tenants`` users through the real OAuth
flow, gives each an API token, then runs ``--clients`` concurrent clients for ``--duration``
seconds. Each operation picks a random tenant: 80% reads (list namespaces, get the namespace, list
apps, list deployments, get an app), 10% app creates (nginx:1.27, 1 replica), 10% deletes of apps
this run created. Everything it made is removed at the end, also after a failure or Ctrl-C.

Prints a table and writes ``artifacts/load.json`` (the server's log: ``artifacts/load-server.log``).
Exits 1 when

* any request failed: a 5xx, a transport error (timeout, refused, reset), or a 4xx other than the
  expected ones (403 quota exceeded, 404 a get/delete racing a delete, 409 a clash), or
* Kuberth's resident memory at the end of the load exceeds by more than 20% its RSS after
  warm-up (the first sample at or after max(5 s, 10% of the duration) into the load phase).

    make load
    .venv/bin/python -m bench.load --quick          # 20 tenants, 10 clients, 20 s
    .venv/bin/python -m bench.load --tenants 100 --clients 50 --duration 120
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.stack import (
    Tenant,
    control_plane,
    cpu_seconds,
    delete_namespaces,
    kuberth_server,
    percentile,
    postgres,
    rss_mib,
    say,
    sign_up_all,
)
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import GitHubStandIn, StandInServer

ARTIFACTS = Path("artifacts")
EXPECTED_4XX = frozenset({403, 404, 409})
RSS_GROWTH_LIMIT = 0.20
SAMPLE_EVERY = 2.0
IMAGE = "nginx:1.27"
READS = ("list namespaces", "get namespace", "list apps", "list deployments", "get app")
OPERATIONS = (*READS, "create app", "delete app")
WEIGHTS = (16, 16, 16, 16, 16, 10, 10)
MAX_ERROR_SAMPLES = 50


@dataclass
class Recorder:
    """Every request's latency and outcome, by operation."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[dict[str, Any]] = field(default_factory=list)
    server_cpu_s: float = 0.0
    loadavg: dict[str, list[float]] = field(default_factory=dict)

    def record(
        self,
        op: str,
        method: str,
        path: str,
        ms: float,
        response: httpx.Response | None,
        fault: str,
    ) -> None:
        self.latencies[op].append(ms)
        status = response.status_code if response is not None else 0
        self.statuses[op][status] += 1
        if status >= 500 or status == 0 or (400 <= status < 500 and status not in EXPECTED_4XX):
            self.errors[op] += 1
            if len(self.error_samples) < MAX_ERROR_SAMPLES:
                body = response.text[:500] if response is not None else fault
                self.error_samples.append(
                    {"op": op, "method": method, "path": path, "status": status, "body": body}
                )


async def sample_rss(pid: int, started: float, samples: list[tuple[float, float]]) -> None:
    """Append (seconds into the load, RSS MiB) every SAMPLE_EVERY seconds until cancelled."""
    while True:
        await asyncio.sleep(SAMPLE_EVERY)
        samples.append((time.monotonic() - started, rss_mib(pid)))


async def one_operation(
    http: httpx.AsyncClient, tenants: list[Tenant], rng: random.Random, rec: Recorder, seq: int
) -> None:
    """Pick an operation and a tenant, run it, record it."""
    op = rng.choices(OPERATIONS, WEIGHTS)[0]
    tenant = rng.choice(tenants)
    if op in ("get app", "delete app") and not tenant.apps:
        with_apps = [t for t in tenants if t.apps]
        if with_apps:
            tenant = rng.choice(with_apps)
        else:
            op = "create app"
    base = f"/api/v1/namespaces/{tenant.namespace}"
    body: dict[str, Any] | None = None
    app = ""
    if op == "list namespaces":
        method, path = "GET", "/api/v1/namespaces"
    elif op == "get namespace":
        method, path = "GET", base
    elif op == "list apps":
        method, path = "GET", f"{base}/apps"
    elif op == "list deployments":
        method, path = "GET", f"{base}/deployments"
    elif op == "get app":
        method, path = "GET", f"{base}/apps/{rng.choice(tenant.apps)}"
    elif op == "create app":
        app = f"app{seq}"
        method, path = "POST", f"{base}/apps"
        body = {"name": app, "image": IMAGE, "replicas": 1, "port": 80}
    else:
        # Taken out before the request, so no two clients delete the same app.
        app = tenant.apps.pop(rng.randrange(len(tenant.apps)))
        method, path = "DELETE", f"{base}/apps/{app}"
    response: httpx.Response | None = None
    fault = ""
    started = time.perf_counter()
    try:
        response = await http.request(
            method, path, json=body, headers={"Authorization": f"Bearer {tenant.token}"}
        )
    except httpx.HTTPError as error:
        fault = f"{type(error).__name__}: {error}"
    ms = (time.perf_counter() - started) * 1000
    rec.record(op, method, path, ms, response, fault)
    if op == "create app" and response is not None and response.status_code == 201:
        tenant.apps.append(app)


async def load(
    url: str, pid: int, tenants: list[Tenant], clients: int, duration: float, seed: int
) -> tuple[Recorder, list[tuple[float, float]], float]:
    """Run the clients; returns the records, the RSS samples and the load's wall time."""
    rec = Recorder()
    rng = random.Random(seed)  # noqa: S311 - picks operations, not secrets
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        started = time.monotonic()
        deadline = started + duration
        samples = [(0.0, rss_mib(pid))]
        cpu_before = cpu_seconds(pid)
        rec.loadavg["start"] = [round(x, 2) for x in os.getloadavg()]
        sampler = asyncio.create_task(sample_rss(pid, started, samples))

        async def worker() -> None:
            while time.monotonic() < deadline:
                await one_operation(http, tenants, rng, rec, next(counter))

        try:
            await asyncio.gather(*(worker() for _ in range(clients)))
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        elapsed = time.monotonic() - started
        rec.server_cpu_s = cpu_seconds(pid) - cpu_before
        rec.loadavg["end"] = [round(x, 2) for x in os.getloadavg()]
        samples.append((elapsed, rss_mib(pid)))
    return rec, samples, elapsed


# -- the report -----------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    rec: Recorder,
    samples: list[tuple[float, float]],
    elapsed: float,
    signups: list[float],
) -> tuple[dict[str, Any], list[str]]:
    """The JSON summary and the reasons to fail (none: a pass)."""
    operations: dict[str, Any] = {}
    for op in OPERATIONS:
        values = rec.latencies.get(op, [])
        statuses = rec.statuses.get(op, Counter())
        operations[op] = {
            "count": len(values),
            "p50_ms": round(percentile(values, 50), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values, default=0.0), 1),
            "statuses": {str(s): n for s, n in sorted(statuses.items())},
            "errors": rec.errors.get(op, 0),
        }
    total = sum(len(v) for v in rec.latencies.values())
    expected: Counter[int] = Counter()
    for statuses in rec.statuses.values():
        expected.update({s: n for s, n in statuses.items() if s in EXPECTED_4XX})
    warmup = max(5.0, 0.1 * args.duration)
    after_warmup = next((rss for t, rss in samples if t >= warmup), samples[-1][1])
    rss = {
        "start_mib": round(samples[0][1], 1),
        "after_warmup_mib": round(after_warmup, 1),
        "end_mib": round(samples[-1][1], 1),
        "max_mib": round(max(rss for _, rss in samples), 1),
        "warmup_s": warmup,
        "samples": [[round(t, 1), round(rss, 1)] for t, rss in samples],
    }
    failures = []
    errors = sum(rec.errors.values())
    if errors:
        failures.append(f"{errors} failed requests")
    if samples[-1][1] > after_warmup * (1 + RSS_GROWTH_LIMIT):
        failures.append(
            f"RSS grew from {after_warmup:.1f} MiB after warm-up to {samples[-1][1]:.1f} MiB "
            f"(limit +{RSS_GROWTH_LIMIT:.0%})"
        )
    summary = {
        "config": {
            "tenants": args.tenants,
            "clients": args.clients,
            "duration_s": args.duration,
            "mix_percent": dict(zip(OPERATIONS, WEIGHTS, strict=True)),
            "image": IMAGE,
            "cpus": os.cpu_count(),
        },
        "signup": {
            "count": len(signups),
            "callback_p50_ms": round(percentile(signups, 50), 1),
            "callback_p99_ms": round(percentile(signups, 99), 1),
        },
        "elapsed_s": round(elapsed, 1),
        "requests": total,
        "throughput_rps": round(total / elapsed, 1) if elapsed else 0.0,
        "server_cpu_s": round(rec.server_cpu_s, 1),
        "loadavg": rec.loadavg,
        "errors": errors,
        "expected_4xx": {str(s): n for s, n in sorted(expected.items())},
        "operations": operations,
        "rss": rss,
        "error_samples": rec.error_samples,
        "failures": failures,
    }
    return summary, failures


def print_table(summary: dict[str, Any]) -> None:
    header = f"{'operation':<18}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'errors':>8}"
    lines = [header, "-" * len(header)]
    for op, row in summary["operations"].items():
        lines.append(
            f"{op:<18}{row['count']:>8}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}"
            f"{row['max_ms']:>10.1f}{row['errors']:>8}"
        )
    rss = summary["rss"]
    expected = ", ".join(f"{s}: {n}" for s, n in summary["expected_4xx"].items()) or "none"
    signup = summary["signup"]
    loadavg = summary["loadavg"]
    cpu_share = summary["server_cpu_s"] / summary["elapsed_s"] if summary["elapsed_s"] else 0.0
    lines += [
        "-" * len(header),
        f"sign-ups: {signup['count']}, callback p50 {signup['callback_p50_ms']} ms, "
        f"p99 {signup['callback_p99_ms']} ms",
        f"requests: {summary['requests']} in {summary['elapsed_s']} s = "
        f"{summary['throughput_rps']} req/s",
        f"Kuberth CPU: {summary['server_cpu_s']} s ({cpu_share:.0%} of one core); 1-min load "
        f"average {loadavg['start'][0]} -> {loadavg['end'][0]} on {os.cpu_count()} CPUs",
        f"errors: {summary['errors']}; expected 4xx: {expected}",
        f"Kuberth RSS: start {rss['start_mib']} MiB, after warm-up ({rss['warmup_s']:.0f} s) "
        f"{rss['after_warmup_mib']} MiB, end {rss['end_mib']} MiB, max {rss['max_mib']} MiB",
    ]
    print("\n".join(lines))
    for sample in summary["error_samples"][:10]:
        print(
            f"  error: {sample['method']} {sample['path']} -> {sample['status']}: "
            f"{sample['body'][:200]}"
        )


# -- main -----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100, help="users signed up (default 100)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--duration", type=float, default=120, help="seconds of load (default 120)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the operation mix")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: 20 tenants, 10 clients, 20 s"
    )
    args = parser.parse_args()
    if args.quick:
        args.tenants, args.clients, args.duration = 20, 10, 20.0
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
    return args


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C: stop the run once; under `uv run` it arrives twice, and the second must not cut
    the clean-up short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGINT, _interrupt)
    ARTIFACTS.mkdir(exist_ok=True)
    server_log = ARTIFACTS / "load-server.log"
    github_ids: set[int] = set()
    kubeconfig: Path | None = None
    try:
        with contextlib.ExitStack() as stack:
            kubeconfig = stack.enter_context(control_plane())
            database_url = stack.enter_context(postgres())
            github = StandInServer(GitHubStandIn(), port=free_port()).start()
            stack.callback(github.stop)
            url, pid = stack.enter_context(
                kuberth_server(kubeconfig, database_url, github, server_log)
            )
            say(f"Kuberth (pid {pid}) on {url}, PostgreSQL, cluster {kubeconfig}")
            started = time.monotonic()
            tenants, signups = sign_up_all(url, github, args.tenants, github_ids)
            say(f"signed up {len(tenants)} tenants in {time.monotonic() - started:.1f} s")
            say(f"load: {args.clients} clients for {args.duration:.0f} s (seed {args.seed})")
            rec, samples, elapsed = asyncio.run(
                load(url, pid, tenants, args.clients, args.duration, args.seed)
            )
        summary, failures = report(args, rec, samples, elapsed, signups)
    finally:
        # A plane of our own went with its namespaces; on a shared one, remove the tenants'.
        if kubeconfig is not None and os.environ.get("KUBECONFIG"):
            say(f"deleting the tenants' {delete_namespaces(kubeconfig, github_ids)} namespaces")
    print_table(summary)
    (ARTIFACTS / "load.json").write_text(json.dumps(summary, indent=2) + "\n")
    for failure in failures:
        say(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
