"""Overhead per call: the same request through Kuberth, straight to kube-apiserver, and through
the minimal async Python hop that is the floor of any Python service in Kuberth's place.

One tenant signs up (real OAuth flow) and gets an API token; one Deployment is created in its
namespace through Kuberth. Then, for each operation and each concurrency, requests go for the
same windows of time

* through Kuberth, with ``Authorization: Bearer kbt_...`` (Kuberth authenticates the token,
  checks the namespace is the caller's, and calls Kubernetes impersonating the tenant),
* straight to kube-apiserver, with the admin kubeconfig's client certificate and the identity
  Kuberth impersonates (``Impersonate-User: kuberth:<github id>``, group ``kuberth:tenants``), and
* through the minimal hop (``bench.hop``, its own process): the same paths and token as Kuberth,
  a raw ASGI app on uvicorn + uvloop + httptools that checks the token in a dict and forwards
  with one aiohttp keep-alive session, impersonating the same identity, answering with the API
  server's status and body as they are. It does none of Kuberth's other work (no database, no
  ownership check, no validation, audit or metrics), so no Python service can do much better;
* through the same hop written as a FastAPI app with Kuberth's route class
  (``bench.fastapi_hop``, its own process): the floor of any FastAPI service in Kuberth's place.

Three comparisons per cell: Kuberth against the direct call (the targets below), the hop against
the direct call (the floor: what a Python hop costs at all; no target), and Kuberth against the
hop (target: within FLOOR, that is p50 ratio <= 1.15 and throughput ratio >= 1 / 1.15). Two more,
without a target, split Kuberth's distance to the hop in two: the FastAPI hop against the hop
(the framework's share) and Kuberth against the FastAPI hop (Kuberth's own).

Every side uses the same client: ``concurrency`` asyncio workers sharing a request counter, each
with its own httpx.AsyncClient of one keep-alive connection, as that many independent callers
would. (One client shared by all the workers was measured to be the bottleneck itself: at c = 32
its connection pool, which looks over every connection on each request, took 5-8 ms of CPU per
request and a whole core, and the direct call's throughput was less than half what it is with a
client per worker.) The client's own costs are therefore in every figure and cancel out of the
ratios as far as they can; its CPU time per cell is in the details (it is not small: httpx spends
about as much CPU per request as the API server does). Every side is HTTPS (HTTP/1.1) on
loopback: kube-apiserver serves nothing else, and Kuberth and the hop serve TLS here with the same
throwaway self-signed certificate (``bench.tls_serve``: uvicorn's TLS, as `kuberth serve` has no
TLS setting of its own; the hop passes it to uvicorn), so the client pays for TLS on every side
and the servers' CPU figures include their TLS.

Each cell runs in ROUNDS rounds in which the sides take turns (each round warmed up, untimed;
each round starts with the next side), so the load from whatever else runs on the machine falls
on all alike. A round is a window of time (quick: 0.75 s, full: 2.5 s; at most MAX_PER_ROUND
requests), so every throughput stands on ROUNDS windows of that length per side, whatever the
concurrency; a request that fails is counted in the row, not in the figure, and such a row is
never "met". Kuberth's and the hop's CPU time per request, which that load disturbs much less
than latency, are reported beside each cell. Run once with SQLite and once with PostgreSQL: two
reports.

On a plane of its own (no ``KUBECONFIG``) the benchmark also reads the CPU time of the plane's
processes (kube-apiserver, etcd, the controllers) over each cell, and reports each side's CPU per
request summed over every process it takes: the client, the side's server (none for the direct
call) and the plane. Once the machine's cores are all busy (c = 8 and 32 on 2 cores), throughput
is about the cores divided by that sum, so the ratio of the sums bounds how closely a side's
throughput can follow the direct call's, and shows how much CPU per request a side may spend to
stay within a throughput target.

``get deployment`` is one Kubernetes call on every side. Kuberth can add the Deployment's pods and
recent events (``?include=pods&include=events``, two more calls); rows without a target compare
that with the same three calls made straight to kube-apiserver, one after the other (the hop has
no ``include``). The client does the same work with what it gets on both sides: it decodes every
JSON body (Kuberth's one, the three direct ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.hop import api_server_tls, hop_server
from bench.report import Report, Row, measured, p
from bench.stack import (
    Certificate,
    Tenant,
    cpu_seconds,
    databases,
    delete_namespaces,
    kuberth_server,
    percentile,
    plane_pids,
    say,
    self_signed,
    sign_up_all,
)
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import GitHubStandIn, StandInServer
from kuberth.services.builders.tenant import TENANTS_GROUP, tenant_user
from kuberth.services.builders.workloads import service
from kuberth.services.specs import ServicePort, ServiceSpec
from kuberth.settings import Settings

ARTIFACTS = Path("artifacts") / "bench"
CONCURRENCY = (1, 8, 32)
OPERATIONS = ("get deployment", "list deployments", "create+delete service")
#: A Deployment with its pods and events: Kuberth's ``include``, or three direct calls.
SAME_INFORMATION = "get deployment+pods+events"
DEPLOYMENT = "bench"
#: Each cell runs in this many rounds, the sides taking turns; a round lasts this long (seconds).
ROUNDS = 4
ROUND_SECONDS = {True: 0.75, False: 2.5}
MAX_PER_ROUND = 20_000
TRANSPORT = "every side HTTPS"
#: Issue 16's targets against the direct call: reads p50 <= 1.3 x and throughput >= 0.8 x; a
#: create+delete pair p50 <= 1.5 x (two writes, each with its audit record; no throughput target).
P50_TARGET = {
    "get deployment": "<= 1.3",
    "list deployments": "<= 1.3",
    "create+delete service": "<= 1.5",
}
THROUGHPUT_TARGET: dict[str, str | None] = {
    "get deployment": ">= 0.8",
    "list deployments": ">= 0.8",
    "create+delete service": None,
}
#: Kuberth against the minimal hop (bench.hop), the floor of any Python service in its place.
FLOOR = 1.15
P50_FLOOR_TARGET = f"<= {FLOOR}"
THROUGHPUT_FLOOR_TARGET = f">= {1 / FLOOR:.4f}"
VS_DIRECT = f"baseline: direct; {TRANSPORT}"
HOP_VS_DIRECT = "the floor: the minimal hop, baseline direct"
VS_HOP = "baseline: the minimal hop"
FRAMEWORK_VS_HOP = "the framework: the FastAPI hop, baseline the minimal hop"
VS_FRAMEWORK = "Kuberth's own: baseline the FastAPI hop"

Call = Callable[[httpx.AsyncClient, int], Awaitable[None]]


class UnexpectedStatusError(Exception):
    pass


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise UnexpectedStatusError(f"{response.status_code}: {response.text[:200]}")


def _decoded(response: httpx.Response) -> Any:
    """The body of a 200, decoded: what a client does with the information it asked for."""
    _expect(response, 200)
    return response.json()


@dataclass
class Cell:
    """One operation at one concurrency on one side. ``server_cpu_s``: the CPU time of the
    side's own server process (Kuberth's or the hop's; none for the direct side);
    ``plane_cpu_s``: the plane's processes' (none when the plane is not a local one)."""

    latencies_ms: list[float]
    elapsed_s: float
    client_cpu_s: float
    server_cpu_s: float | None
    plane_cpu_s: float | None
    errors: Counter[str] = field(default_factory=Counter)
    loadavg: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def total_cpu_ms(self) -> float | None:
        """CPU per answered request, summed over the client, the side's server and the plane."""
        count = len(self.latencies_ms)
        if self.plane_cpu_s is None or not count:
            return None
        spent = self.client_cpu_s + (self.server_cpu_s or 0.0) + self.plane_cpu_s
        return round(1000 * spent / count, 3)

    def summary(self) -> dict[str, Any]:
        count = len(self.latencies_ms)
        return {
            "count": count,
            "p50_ms": round(self.p50, 2),
            "p99_ms": round(self.p99, 2),
            "throughput_rps": round(self.throughput, 1),
            "client_cpu_ms_per_request": round(1000 * self.client_cpu_s / max(count, 1), 3),
            "client_cpu_share": round(self.client_cpu_s / self.elapsed_s, 2),
            "server_cpu_ms_per_request": (
                None
                if self.server_cpu_s is None
                else round(1000 * self.server_cpu_s / max(count, 1), 3)
            ),
            "plane_cpu_ms_per_request": (
                None
                if self.plane_cpu_s is None
                else round(1000 * self.plane_cpu_s / max(count, 1), 3)
            ),
            "errors": dict(self.errors),
            "loadavg": self.loadavg,
        }

    def merge(self, other: Cell) -> Cell:
        """This and a later round of the same cell, as one."""
        return Cell(
            self.latencies_ms + other.latencies_ms,
            self.elapsed_s + other.elapsed_s,
            self.client_cpu_s + other.client_cpu_s,
            None
            if self.server_cpu_s is None or other.server_cpu_s is None
            else self.server_cpu_s + other.server_cpu_s,
            None
            if self.plane_cpu_s is None or other.plane_cpu_s is None
            else self.plane_cpu_s + other.plane_cpu_s,
            self.errors + other.errors,
            [*self.loadavg[:1], *other.loadavg[-1:]],
        )


async def measure(
    clients: Sequence[httpx.AsyncClient],
    call: Call,
    concurrency: int,
    seconds: float,
    pid: int | None,
    first: int,
    plane: list[int],
) -> Cell:
    """Calls (numbered from ``first``) by ``concurrency`` workers, each with its own client of
    ``clients``, for ``seconds`` (at most MAX_PER_ROUND of them), after an untimed warm-up.
    ``plane``: the plane's processes, whose CPU time is read too (none: not read)."""
    warm = itertools.count(first + MAX_PER_ROUND)
    workers = clients[:concurrency]
    await asyncio.gather(*(_warm_up(http, call, warm, 2) for http in workers))
    counter = itertools.count()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    deadline = time.perf_counter() + seconds

    async def worker(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline and (seq := next(counter)) < MAX_PER_ROUND:
            started = time.perf_counter()
            try:
                await call(http, first + seq)
            except (UnexpectedStatusError, httpx.HTTPError) as error:
                errors[f"{type(error).__name__}: {str(error)[:120]}"] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    load_before = os.getloadavg()[0]
    server_before = cpu_seconds(pid) if pid else 0.0
    plane_before = _cpu_of(plane)
    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(http) for http in workers))
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_before
    server_cpu = cpu_seconds(pid) - server_before if pid else None
    plane_after = _cpu_of(plane)
    plane_cpu = None if plane_before is None or plane_after is None else plane_after - plane_before
    return Cell(
        latencies,
        elapsed,
        client_cpu,
        server_cpu,
        plane_cpu,
        errors,
        [round(load_before, 2), round(os.getloadavg()[0], 2)],
    )


def _cpu_of(pids: list[int]) -> float | None:
    """The processes' CPU time together; None without any, or when one has gone (then the
    plane is not what it was)."""
    try:
        return sum(cpu_seconds(pid) for pid in pids) if pids else None
    except FileNotFoundError:
        return None


async def _warm_up(http: httpx.AsyncClient, call: Call, numbers: Iterator[int], count: int) -> None:
    for _ in range(count):
        with contextlib.suppress(UnexpectedStatusError, httpx.HTTPError):
            await call(http, next(numbers))


def kuberth_calls(
    tenant: Tenant, run: str, prefix: str = "k", deleted: int = 204
) -> dict[str, Call]:
    """Kuberth's API; the hop serves the same paths (``prefix`` "h"), its DELETE answering what
    Kubernetes answers (``deleted`` 200). The hop has no ``include``."""
    base = f"/api/v1/namespaces/{tenant.namespace}"

    async def get(http: httpx.AsyncClient, seq: int) -> None:
        _expect(await http.get(f"{base}/deployments/{DEPLOYMENT}"), 200)

    async def list_(http: httpx.AsyncClient, seq: int) -> None:
        _expect(await http.get(f"{base}/deployments"), 200)

    async def get_related(http: httpx.AsyncClient, seq: int) -> None:
        include = {"include": ["pods", "events"]}
        _decoded(await http.get(f"{base}/deployments/{DEPLOYMENT}", params=include))

    async def create_delete(http: httpx.AsyncClient, seq: int) -> None:
        name = f"{prefix}{run}-{seq}"
        body = {"name": name, "app": DEPLOYMENT, "ports": [{"port": 80}]}
        _expect(await http.post(f"{base}/services", json=body), 201)
        _expect(await http.delete(f"{base}/services/{name}"), deleted)

    calls: dict[str, Call] = dict(zip(OPERATIONS, (get, list_, create_delete), strict=True))
    calls[SAME_INFORMATION] = get_related
    return calls


def direct_calls(tenant: Tenant, run: str) -> dict[str, Call]:
    ns = tenant.namespace
    deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
    services = f"/api/v1/namespaces/{ns}/services"

    async def get(http: httpx.AsyncClient, seq: int) -> None:
        _expect(await http.get(f"{deployments}/{DEPLOYMENT}"), 200)

    async def list_(http: httpx.AsyncClient, seq: int) -> None:
        _expect(await http.get(deployments), 200)

    async def create_delete(http: httpx.AsyncClient, seq: int) -> None:
        name = f"d{run}-{seq}"
        spec = ServiceSpec(name=name, app=DEPLOYMENT, ports=[ServicePort(port=80)])
        _expect(await http.post(services, json=service(spec, namespace=ns)), 201)
        _expect(await http.delete(f"{services}/{name}"), 200)

    async def same_information(http: httpx.AsyncClient, seq: int) -> None:
        """What Kuberth's GET of a Deployment asks Kubernetes for, one call after the other."""
        deployment = _decoded(await http.get(f"{deployments}/{DEPLOYMENT}"))
        labels = deployment["spec"]["selector"]["matchLabels"]
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = await http.get(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": selector})
        _decoded(pods)
        _decoded(await http.get(f"/api/v1/namespaces/{ns}/events"))

    calls: dict[str, Call] = dict(zip(OPERATIONS, (get, list_, create_delete), strict=True))
    calls[SAME_INFORMATION] = same_information
    return calls


@dataclass
class Server:
    """A side that is a process of ours: where it listens and its pid (for its CPU time)."""

    url: str
    pid: int


async def compare(
    kuberth: Server,
    hop: Server,
    framework: Server,
    kubeconfig: Path,
    tenant: Tenant,
    seconds: float,
    trust: ssl.SSLContext,
) -> dict[tuple[str, str, int], Cell]:
    """Every cell on every side: {(side, operation, concurrency): cell}."""
    server, context = api_server_tls(kubeconfig)
    plane = plane_pids(kubeconfig)
    run = os.urandom(3).hex()
    impersonate = {"Impersonate-User": tenant_user(tenant.github_id)}
    impersonate["Impersonate-Group"] = TENANTS_GROUP
    bearer = {"Authorization": f"Bearer {tenant.token}"}
    cells: dict[tuple[str, str, int], Cell] = {}
    async with contextlib.AsyncExitStack() as stack:
        through = await _clients(stack, base_url=kuberth.url, headers=bearer, verify=trust)
        direct = await _clients(stack, base_url=server, headers=impersonate, verify=context)
        hopping = await _clients(stack, base_url=hop.url, headers=bearer, verify=trust)
        framed = await _clients(stack, base_url=framework.url, headers=bearer, verify=trust)
        ours, theirs = kuberth_calls(tenant, run), direct_calls(tenant, run)
        floor = kuberth_calls(tenant, run, prefix="h", deleted=200)
        framework_floor = kuberth_calls(tenant, run, prefix="f", deleted=200)
        seq = itertools.count(step=10 * MAX_PER_ROUND)
        for op in OPERATIONS:
            contenders: list[tuple[str, str, list[httpx.AsyncClient], Call, int | None]] = [
                ("kuberth", op, through, ours[op], kuberth.pid),
                ("direct", op, direct, theirs[op], None),
                ("hop", op, hopping, floor[op], hop.pid),
                ("fastapi", op, framed, framework_floor[op], framework.pid),
            ]
            if op == OPERATIONS[0]:
                contenders += [
                    ("kuberth", SAME_INFORMATION, through, ours[SAME_INFORMATION], kuberth.pid),
                    ("direct", SAME_INFORMATION, direct, theirs[SAME_INFORMATION], None),
                ]
            for concurrency in CONCURRENCY:
                for round_ in range(ROUNDS):
                    # Take turns in rounds, starting with each side in turn, so all meet the same
                    # load from whatever else runs on the machine.
                    shift = round_ % len(contenders)
                    for side, name, clients, call, side_pid in (
                        contenders[shift:] + contenders[:shift]
                    ):
                        cell = await measure(
                            clients, call, concurrency, seconds, side_pid, next(seq), plane
                        )
                        key = (side, name, concurrency)
                        cells[key] = cells[key].merge(cell) if key in cells else cell
                for side, name, *_ in contenders:
                    cell = cells[side, name, concurrency]
                    say(
                        f"  {side:<7} {name:<27} c={concurrency:<3} p50 {cell.p50:7.2f} ms  "
                        f"p99 {cell.p99:7.2f} ms  {cell.throughput:7.1f} req/s"
                        + (f"  errors {sum(cell.errors.values())}" if cell.errors else "")
                    )
    return cells


async def _clients(
    stack: contextlib.AsyncExitStack,
    *,
    base_url: str,
    headers: dict[str, str],
    verify: ssl.SSLContext,
) -> list[httpx.AsyncClient]:
    """One client per worker at the highest concurrency, each of one keep-alive connection."""
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return [
        await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=base_url, headers=headers, timeout=60, limits=one, verify=verify
            )
        )
        for _ in range(max(CONCURRENCY))
    ]


def report(
    database: str, quick: bool, seconds: float, cells: dict[tuple[str, str, int], Cell]
) -> Report:
    rep = Report(scenario=f"overhead-{database}", mode="quick" if quick else "full")
    window = f"{ROUNDS} x {seconds:g} s per side, interleaved"
    for op in OPERATIONS:
        for concurrency in CONCURRENCY:
            through = cells["kuberth", op, concurrency]
            direct = cells["direct", op, concurrency]
            hop = cells["hop", op, concurrency]
            framework = cells["fastapi", op, concurrency]
            label = f"{op} c={concurrency}"
            # Kuberth against the direct call.
            rep.add(_latency(f"{label} p50", 50, through, direct, VS_DIRECT, P50_TARGET[op]))
            rep.add(_latency(f"{label} p99", 99, through, direct, VS_DIRECT))
            rep.add(
                _throughput(
                    f"{label} throughput",
                    through,
                    direct,
                    f"{window}; {VS_DIRECT}",
                    THROUGHPUT_TARGET[op],
                )
            )
            rep.add(_cpu(f"{label} Kuberth CPU per request", through))
            rep.add(_total_cpu(f"{label} CPU per request, every process", through, direct))
            # The floor: the minimal hop against the direct call (no target).
            rep.add(_latency(f"{label} hop p50", 50, hop, direct, HOP_VS_DIRECT))
            rep.add(_throughput(f"{label} hop throughput", hop, direct, HOP_VS_DIRECT))
            rep.add(_cpu(f"{label} hop CPU per request", hop))
            rep.add(_total_cpu(f"{label} hop CPU per request, every process", hop, direct))
            # Kuberth against the floor.
            rep.add(_latency(f"{label} p50 vs hop", 50, through, hop, VS_HOP, P50_FLOOR_TARGET))
            rep.add(
                _throughput(
                    f"{label} throughput vs hop", through, hop, VS_HOP, THROUGHPUT_FLOOR_TARGET
                )
            )
            # The distance to the hop in two: the framework's share, and Kuberth's own.
            rep.add(_latency(f"{label} FastAPI hop p50", 50, framework, hop, FRAMEWORK_VS_HOP))
            rep.add(
                _throughput(f"{label} FastAPI hop throughput", framework, hop, FRAMEWORK_VS_HOP)
            )
            rep.add(_cpu(f"{label} FastAPI hop CPU per request", framework))
            rep.add(_latency(f"{label} p50 vs FastAPI hop", 50, through, framework, VS_FRAMEWORK))
            rep.add(
                _throughput(f"{label} throughput vs FastAPI hop", through, framework, VS_FRAMEWORK)
            )
    for concurrency in CONCURRENCY:
        through = cells["kuberth", SAME_INFORMATION, concurrency]
        same = cells["direct", SAME_INFORMATION, concurrency]
        note = f"baseline: the same 3 calls in sequence, every body decoded; {TRANSPORT}"
        label = f"{SAME_INFORMATION} c={concurrency}"
        rep.add(_latency(f"{label} p50", 50, through, same, note))
        rep.add(_throughput(f"{label} throughput", through, same, f"{window}; {note}"))
    rep.details = {
        "database": database,
        "rounds": ROUNDS,
        "round_seconds": seconds,
        "client": (
            "asyncio workers = concurrency, each its own httpx.AsyncClient of one keep-alive "
            "connection; the same for all sides"
        ),
        "kuberth_transport": "HTTPS (HTTP/1.1) on loopback, uvicorn's TLS (bench.tls_serve)",
        "direct_transport": "HTTPS (HTTP/1.1) on loopback, admin client certificate",
        "hop_transport": (
            "HTTPS (HTTP/1.1) on loopback, uvicorn's TLS; to the API server one aiohttp session "
            f"of {max(CONCURRENCY)} keep-alive connections (bench.hop); the FastAPI hop the "
            "same, as a FastAPI app (bench.fastapi_hop)"
        ),
        "cells": {
            f"{side} | {op} | c={c}": cell.summary() for (side, op, c), cell in cells.items()
        },
        "errors": sum(sum(cell.errors.values()) for cell in cells.values()),
        "cpus": os.cpu_count(),
    }
    return rep


def _latency(
    name: str, q: float, through: Cell, direct: Cell, note: str, target: str | None = None
) -> Row:
    return measured(
        name,
        "ms",
        p(q),
        through.latencies_ms,
        direct.latencies_ms,
        failed=sum(through.errors.values()),
        baseline_failed=sum(direct.errors.values()),
        target=target,
        checked="ratio",
        note=note,
    )


def _cpu(name: str, cell: Cell) -> Row:
    """The side's server CPU per request it answered (failed ones are in the row's count)."""
    count = len(cell.latencies_ms)
    cpu = None
    if cell.server_cpu_s is not None and count:
        cpu = round(1000 * cell.server_cpu_s / count, 3)
    return Row(name, cpu, "ms", samples=count, failed=sum(cell.errors.values()))


def _total_cpu(name: str, side: Cell, direct: Cell) -> Row:
    """A side's CPU per request over every process (client, its server, the plane) against the
    direct call's (client and plane): when the cores are busy, throughput follows its inverse."""
    return Row(
        name,
        side.total_cpu_ms(),
        "ms",
        direct.total_cpu_ms(),
        checked="ratio",
        note="client + server + the plane's processes; baseline: direct (client + the plane)",
        samples=len(side.latencies_ms),
        failed=sum(side.errors.values()),
        baseline_samples=len(direct.latencies_ms),
        baseline_failed=sum(direct.errors.values()),
    )


def _throughput(
    name: str, through: Cell, direct: Cell, note: str, target: str | None = None
) -> Row:
    return Row(
        name,
        round(through.throughput, 1) if through.latencies_ms else None,
        "req/s",
        round(direct.throughput, 1) if direct.latencies_ms else None,
        target,
        "ratio",
        note,
        samples=len(through.latencies_ms),
        failed=sum(through.errors.values()),
        baseline_samples=len(direct.latencies_ms),
        baseline_failed=sum(direct.errors.values()),
    )


def one_database(
    kubeconfig: Path,
    database: str,
    database_url: str,
    github: StandInServer,
    quick: bool,
    github_ids: set[int],
    tls: Certificate,
) -> Report:
    seconds = ROUND_SECONDS[quick]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"overhead-{database}-server.log"
    # Room for 32 Services at once (create+delete at c=32; the default quota allows 20), and for
    # the quota controller's lag: it gives a deleted Service's count back only when it catches up,
    # so thousands of create+delete pairs in a row once met a quota of 200 (403 on both sides).
    quota = {**Settings.model_fields["tenant_quota"].get_default(), "services": "100000"}
    settings = {"reconcile_interval": "0", "tenant_quota": json.dumps(quota)}
    load_start = [round(x, 2) for x in os.getloadavg()]
    with kuberth_server(kubeconfig, database_url, github, log, settings, tls) as (url, pid):
        (tenant,), _ = sign_up_all(url, github, 1, github_ids, tls.context)
        created = httpx.post(
            f"{url}/api/v1/namespaces/{tenant.namespace}/deployments",
            headers={"Authorization": f"Bearer {tenant.token}"},
            json={"name": DEPLOYMENT, "image": "nginx:1.27", "replicas": 1, "port": 8080},
            timeout=60,
            verify=tls.context,
        )
        if created.status_code != 201:
            raise RuntimeError(f"creating the Deployment: {created.status_code} {created.text}")
        time.sleep(2)  # the Deployment's pod and events appear
        say(f"{database}: Kuberth (pid {pid}) on {url}, namespace {tenant.namespace}")
        hop_log = ARTIFACTS / f"overhead-{database}-hop.log"
        tokens = {tenant.token: tenant.github_id}
        connections = max(CONCURRENCY)
        framework_log = ARTIFACTS / f"overhead-{database}-fastapi-hop.log"
        hop_args = (kubeconfig, tokens, tls.cert, tls.key, tls.context, connections)
        with (
            hop_server(*hop_args, hop_log) as (hop_url, hop_pid),
            hop_server(*hop_args, framework_log, "fastapi") as (framework_url, framework_pid),
        ):
            say(f"{database}: the minimal hop (pid {hop_pid}) on {hop_url}")
            say(f"{database}: the FastAPI hop (pid {framework_pid}) on {framework_url}")
            kuberth, hop = Server(url, pid), Server(hop_url, hop_pid)
            framework = Server(framework_url, framework_pid)
            cells = asyncio.run(
                compare(kuberth, hop, framework, kubeconfig, tenant, seconds, tls.context)
            )
    rep = report(database, quick, seconds, cells)
    rep.details["loadavg"] = {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]}
    return rep


def run(kubeconfig: Path, quick: bool) -> list[Report]:
    github = StandInServer(GitHubStandIn(), port=free_port()).start()
    github_ids: set[int] = set()
    try:
        with self_signed() as tls:
            return [
                one_database(kubeconfig, database, url, github, quick, github_ids, tls)
                for database, url in databases("kuberth-bench-overhead-")
            ]
    finally:
        github.stop()
        delete_namespaces(kubeconfig, github_ids)
