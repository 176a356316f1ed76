"""Starvation: one tenant holding long waits and another flooding, while a third is served.

One Kuberth server (production-strict, `kuberth serve` as its own process) and three tenants
signed up through the real OAuth flow. Two probes run at a steady rate throughout (PROBE_RATE a
second each, open loop: a request is sent on schedule whether or not the last one has answered, so
a stall shows up in the figures instead of slowing the probe down):

* ``/healthz``, as a load balancer asks it;
* tenant C's ``GET /api/v1/namespaces/{ns}/deployments/{name}`` with its API token.

Each round has two phases of the same length, their order alternating from round to round so the
machine's other load falls on both alike:

* baseline: the probes alone;
* attack: the probes, while (in a process of its own, so its CPU time is not the probes')

  - tenant A opens WAITS rollout waits at once (``?timeout=`` WAIT_TIMEOUT) on a paused
    Deployment, which never rolls out by itself. Beyond its caps the server answers 429 at once;
    A honours Retry-After and tries again while the phase lasts (a greedy client, not a broken
    one). The waits the server admitted are held until the phase ends, when the benchmark
    completes the rollout (the Deployment's status, as the admin) and they answer 200;
  - tenant B floods its own Deployment list from FLOOD_CONNECTIONS keep-alive connections, each
    sending its next request as soon as the last one answered, Retry-After ignored: most get 429
    from B's rate limit.

A new paused Deployment per attack round, so every round starts with a rollout nobody completed.

The fairness settings are the defaults (``long_waits_per_tenant``, ``long_waits_total``,
``rate_limit_per_second``, ``rate_limit_burst``). The one override is a restoration: the other
scenarios turn the rate limit off (``bench.stack.server_environment``), this one turns it back on
at its default, since it is half of what is measured. The reconciler is off, as in the others.

Targets: the p99 of both probes under attack <= 250 ms, and no 5xx anywhere (probes, A, B). A
probe that fails (a transport error, any status but 200) is counted in its row, which is then
never met; so are tenant C's own 429s. Every 429 must carry Retry-After. Both databases.

The attacker runs on the same 2 cores as the server, the control plane and the probes, so its
own CPU time is part of the load the server meets; a remote attacker would cost the server less.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from kubernetes import client, config

from bench.report import ARTIFACTS, Report, Row, measured, p
from bench.stack import (
    Tenant,
    cpu_seconds,
    databases,
    delete_namespaces,
    kuberth_server,
    say,
    sign_up_all,
)
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import GitHubStandIn, StandInServer
from kuberth.settings import Settings

ROUNDS = {True: 2, False: 4}
#: Seconds of each phase (baseline, attack) in each round.
PHASE_SECONDS = {True: 10.0, False: 30.0}
#: Requests a second of each probe; tenant C's stays within its own rate limit (20/s by default).
PROBE_RATE = 20.0
WAITS = 200
#: Seconds each of A's rollout waits asks for: longer than a phase, within ``rollout_timeout``.
WAIT_TIMEOUT = 100
FLOOD_CONNECTIONS = 4
TARGET_MS = 250.0
P99_TARGET = f"<= {TARGET_MS:g}"
#: C's Deployment: paused like A's, so nothing in the cluster works on it while it is read.
READ = "read"
FAIRNESS = (
    "long_waits_per_tenant",
    "long_waits_total",
    "rate_limit_per_second",
    "rate_limit_burst",
)


@dataclass
class Probe:
    """One probe's answers in one phase: latencies of its 200s, and what else it got."""

    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    #: When each of ``latencies_ms`` was sent, in seconds from the start of its phase.
    sent_s: list[float] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def server_errors(self) -> int:
        return sum(n for what, n in self.failures.items() if what.startswith("5"))

    def merge(self, other: Probe) -> Probe:
        return Probe(
            self.latencies_ms + other.latencies_ms,
            self.failures + other.failures,
            self.sent_s + other.sent_s,
        )

    def slow(self, limit_ms: float) -> list[tuple[float, float]]:
        """(second of the phase sent, ms) of the answers slower than ``limit_ms``."""
        return [
            (round(at, 2), round(ms, 1))
            for at, ms in zip(self.sent_s, self.latencies_ms, strict=True)
            if ms > limit_ms
        ]


@dataclass
class Phase:
    healthz: Probe
    read: Probe
    seconds: float
    server_cpu_s: float


@dataclass
class Attack:
    """What tenants A and B got during one attack phase."""

    #: A's answers by kind: "admitted" (a held wait answered 200 once the rollout completed),
    #: "429 rate_limit", "429 long_waits_per_tenant", "429 long_waits_total", or the status.
    waits: Counter[str] = field(default_factory=Counter)
    #: B's answers by status (or transport error).
    flood: Counter[str] = field(default_factory=Counter)
    #: 429s (A's and B's) without a Retry-After that is a whole number >= 1.
    bad_retry_after: int = 0
    seconds: float = 0.0
    #: B's latencies (every answer), and the attacking process's CPU time.
    flood_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0

    def merge(self, other: Attack) -> Attack:
        return Attack(
            self.waits + other.waits,
            self.flood + other.flood,
            self.bad_retry_after + other.bad_retry_after,
            self.seconds + other.seconds,
            self.flood_ms + other.flood_ms,
            self.cpu_s + other.cpu_s,
        )


@dataclass
class Answer:
    """What the attacker needs of a response (aiohttp's are read inside their context)."""

    status: int
    retry_after: str | None
    message: str


def _refusal(answer: Answer) -> str:
    """Which limit a 429 comes from, by its message (all share the error code)."""
    if "requests a second" in answer.message:
        return "rate_limit"
    if "per user" in answer.message:
        return "long_waits_per_tenant"
    if "server is holding" in answer.message:
        return "long_waits_total"
    return "without the error shape"


def _retry_after(answer: Answer) -> int | None:
    """Retry-After as the whole seconds (>= 1) Kuberth promises, or None."""
    if answer.retry_after is None or not answer.retry_after.isdigit():
        return None
    value = int(answer.retry_after)
    return value if value >= 1 else None


async def _get(http: aiohttp.ClientSession, path: str, **params: str | int) -> Answer:
    async with http.get(path, params=params) as response:
        message = ""
        if response.status == 429:
            with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
                message = str((await response.json()).get("message", ""))
        else:
            await response.read()
        return Answer(response.status, response.headers.get("Retry-After"), message)


async def _attack(url: str, a: Tenant, b: Tenant, deployment: str, control: Connection) -> Attack:
    """A's waits and B's flood until ``control`` says stop; then A's held waits are awaited (the
    parent completes the rollout) and the counts sent back.

    aiohttp, not httpx: httpx's pool spent most of a core on 200 connections at once, so the
    attacker starved itself (and the server) of CPU and B's flood ran at a few dozen a second.
    """
    result = Attack()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def check(answer: Answer) -> str:
        if answer.status == 429:
            if _retry_after(answer) is None:
                result.bad_retry_after += 1
            return f"429 {_refusal(answer)}"
        return str(answer.status)

    async def wait(http: aiohttp.ClientSession) -> None:
        path = f"/api/v1/namespaces/{a.namespace}/deployments/{deployment}/rollout"
        while True:
            try:
                answer = await _get(http, path, timeout=WAIT_TIMEOUT)
            except (aiohttp.ClientError, TimeoutError) as error:
                result.waits[type(error).__name__] += 1
                return
            kind = check(answer)
            if answer.status == 200:
                result.waits["admitted"] += 1
                return
            result.waits[kind] += 1
            if answer.status != 429 or stop.is_set():
                return
            # Honour Retry-After; give up once the phase is over.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _retry_after(answer) or 1)
            if stop.is_set():
                return

    async def flood(http: aiohttp.ClientSession) -> None:
        path = f"/api/v1/namespaces/{b.namespace}/deployments"
        while not stop.is_set():
            started = time.perf_counter()
            try:
                answer = await _get(http, path)
            except (aiohttp.ClientError, TimeoutError) as error:
                result.flood[type(error).__name__] += 1
                await asyncio.sleep(0.01)  # a refused connection must not spin
                continue
            result.flood_ms.append((time.perf_counter() - started) * 1000)
            result.flood[check(answer)] += 1

    async with (
        aiohttp.ClientSession(
            base_url=url,
            headers={"Authorization": f"Bearer {a.token}"},
            timeout=aiohttp.ClientTimeout(total=WAIT_TIMEOUT + 60),
            connector=aiohttp.TCPConnector(limit=WAITS),
        ) as waiting,
        aiohttp.ClientSession(
            base_url=url,
            headers={"Authorization": f"Bearer {b.token}"},
            timeout=aiohttp.ClientTimeout(total=60),
            connector=aiohttp.TCPConnector(limit=FLOOD_CONNECTIONS),
        ) as flooding,
    ):
        started, cpu = time.perf_counter(), time.process_time()
        waits = [asyncio.create_task(wait(waiting)) for _ in range(WAITS)]
        floods = [asyncio.create_task(flood(flooding)) for _ in range(FLOOD_CONNECTIONS)]
        control.send("started")
        await loop.run_in_executor(None, control.recv)  # "stop"
        stop.set()
        result.seconds = time.perf_counter() - started
        result.cpu_s = time.process_time() - cpu
        await asyncio.gather(*floods)
        control.send("stopped")  # the parent completes the rollout now
        _, pending = await asyncio.wait(waits, timeout=60)
        for task in pending:
            task.cancel()
            result.waits["never answered"] += 1
        await asyncio.gather(*pending, return_exceptions=True)
    return result


def _attacker(url: str, a: Tenant, b: Tenant, deployment: str, control: Connection) -> None:
    """The attacking process's body."""
    control.send(asyncio.run(_attack(url, a, b, deployment, control)))


class Attacker:
    """Tenants A and B at work in a process of their own, from start to stop."""

    def __init__(self, url: str, a: Tenant, b: Tenant, deployment: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, theirs = context.Pipe()
        self._process = context.Process(
            target=_attacker, args=(url, a, b, deployment, theirs), daemon=True
        )
        self._process.start()
        theirs.close()
        self._expect("started", 60)

    def _expect(self, message: str, timeout: float) -> Any:
        if not self._control.poll(timeout):
            raise RuntimeError(f"the attacking process did not report {message!r}")
        return self._control.recv()

    def stop(self) -> None:
        """Stop the flood and the retries; A's held waits go on until the rollout completes."""
        self._control.send("stop")
        self._expect("stopped", 60)

    def result(self) -> Attack:
        attack: Attack = self._expect("its counts", 120)
        self._process.join(10)
        return attack

    def close(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._control.close()


async def _probe(http: httpx.AsyncClient, path: str, seconds: float) -> Probe:
    """``path`` at PROBE_RATE for ``seconds``, each request on schedule (open loop)."""
    probe = Probe()

    async def one() -> None:
        started = time.perf_counter()
        try:
            response = await http.get(path)
        except httpx.HTTPError as error:
            probe.failures[type(error).__name__] += 1
            return
        if response.status_code != 200:
            probe.failures[str(response.status_code)] += 1
            return
        probe.latencies_ms.append((time.perf_counter() - started) * 1000)
        probe.sent_s.append(started - start)

    start = time.perf_counter()
    tasks = []
    for i in range(int(seconds * PROBE_RATE)):
        await asyncio.sleep(max(0.0, start + i / PROBE_RATE - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return probe


async def _probes(url: str, c: Tenant, seconds: float, pid: int) -> Phase:
    limits = httpx.Limits(max_connections=100)
    async with (
        httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as anonymous,
        httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {c.token}"},
            timeout=60,
            limits=limits,
        ) as tenant,
    ):
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        healthz, read = await asyncio.gather(
            _probe(anonymous, "/healthz", seconds),
            _probe(tenant, f"/api/v1/namespaces/{c.namespace}/deployments/{READ}", seconds),
        )
        elapsed = time.perf_counter() - started
        return Phase(healthz, read, elapsed, cpu_seconds(pid) - cpu)


def _paused(name: str) -> client.V1Deployment:
    """A paused Deployment: no controller touches it, so its rollout never completes by itself
    and it has no pods (as ``tests.integration.objects.held_deployment``)."""
    labels = {"app": name}
    restricted = client.V1SecurityContext(
        allow_privilege_escalation=False,
        run_as_non_root=True,
        run_as_user=1000,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )
    container = client.V1Container(
        name="app", image="registry.k8s.io/pause:3.10", security_context=restricted
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            paused=True,
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def _complete_rollout(apps: client.AppsV1Api, namespace: str, name: str) -> None:
    """Complete the paused Deployment's rollout for good: unpaused at 0 replicas, the controller
    marks it complete and keeps it so, and the held waits answer. (Writing a complete status
    instead is undone by the controller at once, and a wait admitted just after would hang.)"""
    apps.patch_namespaced_deployment(name, namespace, {"spec": {"paused": False, "replicas": 0}})


@dataclass
class Totals:
    baseline_healthz: Probe = field(default_factory=Probe)
    baseline_read: Probe = field(default_factory=Probe)
    attack_healthz: Probe = field(default_factory=Probe)
    attack_read: Probe = field(default_factory=Probe)
    attack: Attack = field(default_factory=Attack)
    baseline_cpu: list[float] = field(default_factory=lambda: [0.0, 0.0])  # CPU s, seconds
    attack_cpu: list[float] = field(default_factory=lambda: [0.0, 0.0])
    loadavg: list[list[float]] = field(default_factory=list)


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def one_database(
    kubeconfig: Path,
    database: str,
    database_url: str,
    github: StandInServer,
    quick: bool,
    github_ids: set[int],
) -> Report:
    seconds = PHASE_SECONDS[quick]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"starvation-{database}-server.log"
    defaults = {name: str(Settings.model_fields[name].get_default()) for name in FAIRNESS}
    settings = {"reconcile_interval": "0", "rate_limit_per_second": defaults[FAIRNESS[2]]}
    totals = Totals()
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(kubeconfig)
    )
    try:
        apps = client.AppsV1Api(api)
        with kuberth_server(kubeconfig, database_url, github, log, settings) as (url, pid):
            (a, b, c), _ = sign_up_all(url, github, 3, github_ids)
            apps.create_namespaced_deployment(c.namespace, _paused(READ))
            say(f"{database}: Kuberth (pid {pid}) on {url}; A {a.login}, B {b.login}, C {c.login}")
            for round_ in range(ROUNDS[quick]):
                order = ("baseline", "attack") if round_ % 2 == 0 else ("attack", "baseline")
                for phase in order:
                    totals.loadavg.append(_loadavg())
                    if phase == "baseline":
                        measured_ = asyncio.run(_probes(url, c, seconds, pid))
                        totals.baseline_healthz = totals.baseline_healthz.merge(measured_.healthz)
                        totals.baseline_read = totals.baseline_read.merge(measured_.read)
                        cpu = totals.baseline_cpu
                    else:
                        held = f"held-{round_}"
                        apps.create_namespaced_deployment(a.namespace, _paused(held))
                        attacker = Attacker(url, a, b, held)
                        try:
                            measured_ = asyncio.run(_probes(url, c, seconds, pid))
                            attacker.stop()
                            _complete_rollout(apps, a.namespace, held)
                            attack = attacker.result()
                        finally:
                            attacker.close()
                        totals.attack = totals.attack.merge(attack)
                        totals.attack_healthz = totals.attack_healthz.merge(measured_.healthz)
                        totals.attack_read = totals.attack_read.merge(measured_.read)
                        cpu = totals.attack_cpu
                        say(
                            f"  round {round_}: A {dict(attack.waits)}; "
                            f"B {dict(attack.flood)} in {attack.seconds:.1f} s, p99 "
                            f"{p(99)(attack.flood_ms):.0f} ms; attacker CPU {attack.cpu_s:.1f} s"
                        )
                    cpu[0] += measured_.server_cpu_s
                    cpu[1] += measured_.seconds
                    say(
                        f"  round {round_} {phase:<8} /healthz p99 "
                        f"{p(99)(measured_.healthz.latencies_ms):6.1f} ms  C GET p99 "
                        f"{p(99)(measured_.read.latencies_ms):6.1f} ms"
                    )
    finally:
        api.close()  # type: ignore[no-untyped-call]
    totals.loadavg.append(_loadavg())
    return report(database, quick, seconds, defaults, totals)


def report(
    database: str, quick: bool, seconds: float, defaults: dict[str, str], totals: Totals
) -> Report:
    rep = Report(scenario=f"starvation-{database}", mode="quick" if quick else "full")
    window = f"{ROUNDS[quick]} x {seconds:g} s each side, interleaved; baseline: no attack"
    probes = (
        ("/healthz", totals.attack_healthz, totals.baseline_healthz),
        ("tenant C GET deployment", totals.attack_read, totals.baseline_read),
    )
    for label, attacked, quiet in probes:
        for q, target in ((50, None), (99, P99_TARGET)):
            rep.add(
                measured(
                    f"{label} p{q} under attack",
                    "ms",
                    p(q),
                    attacked.latencies_ms,
                    quiet.latencies_ms,
                    failed=attacked.failed,
                    baseline_failed=quiet.failed,
                    target=target,
                    note=f"{PROBE_RATE:g}/s open loop; {window}",
                )
            )
    attack = totals.attack
    server_errors = (
        sum(n for what, n in attack.waits.items() if what.startswith("5"))
        + sum(n for what, n in attack.flood.items() if what.startswith("5"))
        + sum(probe.server_errors for _, *sides in probes for probe in sides)
    )
    answers = (
        sum(attack.waits.values())
        + sum(attack.flood.values())
        + sum(len(probe.latencies_ms) + probe.failed for _, *sides in probes for probe in sides)
    )
    rep.add(
        Row(
            "5xx responses",
            server_errors,
            "responses",
            target="<= 0",
            note="A's waits, B's flood, both probes, both phases",
            samples=answers,
        )
    )
    refused = attack.waits.total() - attack.waits["admitted"]
    refusals = [n for what, n in attack.waits.items() if what.startswith("429")]
    refusals += [n for what, n in attack.flood.items() if what.startswith("429")]
    rep.add(
        Row(
            "429s without a valid Retry-After",
            attack.bad_retry_after,
            "responses",
            target="<= 0",
            samples=sum(refusals),
        )
    )
    rounds = ROUNDS[quick]
    rep.add(
        Row(
            "A: rollout waits admitted (held)",
            attack.waits["admitted"],
            "waits",
            note=(
                f"{WAITS} opened at once per round, {rounds} rounds; per-tenant cap "
                f"{defaults['long_waits_per_tenant']} (total {defaults['long_waits_total']})"
            ),
            samples=attack.waits.total(),
        )
    )
    by_reason = ", ".join(
        f"{what.removeprefix('429 ')} {n}"
        for what, n in sorted(attack.waits.items())
        if what != "admitted"
    )
    rep.add(
        Row(
            "A: rollout wait requests refused",
            refused,
            "responses",
            note=f"{by_reason}; A retries after Retry-After while the phase lasts",
            samples=attack.waits.total(),
        )
    )
    flood = attack.flood.total()
    rep.add(
        Row(
            "B: flood throughput",
            round(flood / attack.seconds, 1) if attack.seconds else None,
            "req/s",
            note=f"{FLOOD_CONNECTIONS} connections, Retry-After ignored",
            samples=flood,
        )
    )
    limited = sum(n for what, n in attack.flood.items() if what.startswith("429"))
    rep.add(
        Row(
            "B: share refused 429",
            round(100 * limited / flood, 1) if flood else None,
            "%",
            note=(
                f"rate limit {defaults['rate_limit_per_second']}/s, "
                f"burst {defaults['rate_limit_burst']}; {dict(attack.flood)}"
            ),
            samples=flood,
        )
    )
    rep.add(
        Row(
            "Kuberth CPU share",
            round(totals.attack_cpu[0] / totals.attack_cpu[1], 2) if totals.attack_cpu[1] else None,
            "cores",
            round(totals.baseline_cpu[0] / totals.baseline_cpu[1], 2)
            if totals.baseline_cpu[1]
            else None,
            note="the server process's CPU seconds per second of the phase",
        )
    )
    rep.details = {
        "database": database,
        "rounds": rounds,
        "phase_seconds": seconds,
        "probe_rate_per_second": PROBE_RATE,
        "waits_per_round": WAITS,
        "wait_timeout_s": WAIT_TIMEOUT,
        "flood_connections": FLOOD_CONNECTIONS,
        "fairness_settings": defaults,
        "overrides": {
            "rate_limit_per_second": (
                f"{defaults['rate_limit_per_second']} (the default; the other scenarios set 0)"
            ),
            "reconcile_interval": "0 (as the other scenarios)",
        },
        "probe_failures": {
            "baseline /healthz": dict(totals.baseline_healthz.failures),
            "baseline C": dict(totals.baseline_read.failures),
            "attack /healthz": dict(totals.attack_healthz.failures),
            "attack C": dict(totals.attack_read.failures),
        },
        # Where in the attack phases the answers over the target were sent: A's 200 waits at
        # once at 0 s, and its rate-limited retries together about every second after.
        "attack_over_target_sent_at_s": {
            "/healthz": [at for at, _ in totals.attack_healthz.slow(TARGET_MS)],
            "C": [at for at, _ in totals.attack_read.slow(TARGET_MS)],
        },
        "b_flood_ms": {"p50": p(50)(attack.flood_ms), "p99": p(99)(attack.flood_ms)},
        "attacker_cpu_s": round(attack.cpu_s, 1),
        "a_waits": dict(attack.waits),
        "b_flood": dict(attack.flood),
        "loadavg": totals.loadavg,
        "cpus": os.cpu_count(),
    }
    return rep


def run(kubeconfig: Path, quick: bool) -> list[Report]:
    github = StandInServer(GitHubStandIn(), port=free_port()).start()
    github_ids: set[int] = set()
    try:
        return [
            one_database(kubeconfig, database, url, github, quick, github_ids)
            for database, url in databases("kuberth-bench-starvation-")
        ]
    finally:
        github.stop()
        delete_namespaces(kubeconfig, github_ids)
