"""The framework's own cost: what FastAPI costs a request before Kuberth does anything.

The overhead scenario holds Kuberth against the minimal hop, a raw ASGI app. Part of the
difference is not Kuberth's code but the framework it is written in; this scenario measures that
part on its own, with no upstream call and no database, so it can be told apart:

* ``raw``: a raw ASGI app on uvicorn (uvloop, httptools) that reads the Authorization header
  and answers a small JSON document, as the hop's skeleton does;
* ``fastapi``: the same answer from a FastAPI app shaped like one of Kuberth's reads and nothing
  more: Starlette's session middleware, one async dependency reading the Authorization header,
  two path parameters, a boolean query parameter and a response model;
* ``planned``: that app with its route made by Kuberth's route class, which plans a bodiless
  route's handling once (:mod:`kuberth.http.planned`) instead of FastAPI solving it anew on every
  request.

All serve plain HTTP on loopback, one at a time, taking turns in every round so the machine's
other load falls on all alike. Figures: the server process's CPU per request (user + system,
from /proc) and the client's p50, at c = 1 and 8. No target: it says how much of the distance
between Kuberth and the hop a FastAPI service pays whatever it does.

    python -m bench --only framework
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware

from bench.report import Report, mean, measured, p
from bench.stack import cpu_seconds, say
from kuberth.cluster.plane import free_port
from kuberth.http.json_bodies import BoundedJSONRoute

SIDES = ("raw", "fastapi", "planned")
CONCURRENCY = (1, 8)
PATH = "/api/v1/namespaces/tenant/deployments/web"
PATH_TEMPLATE = "/api/v1/namespaces/{namespace}/deployments/{name}"
ANSWER: dict[str, Any] = {
    "name": "web",
    "namespace": "tenant",
    "image": "nginx:1.27",
    "replicas": 1,
    "ready": 1,
    "labels": {"app": "web"},
}


async def _raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The hop's skeleton: one header read, one JSON answer."""
    if scope["type"] != "http":
        return
    dict(scope["headers"]).get(b"authorization", b"")
    body = json.dumps(ANSWER).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Deployment(BaseModel):
    name: str
    namespace: str
    image: str
    replicas: int
    ready: int
    labels: dict[str, str]


async def _caller(request: Request) -> str:
    return request.headers.get("authorization", "")


async def _read(
    namespace: str,
    name: str,
    who: Annotated[str, Depends(_caller)],
    full: Annotated[bool, Query()] = False,
) -> dict[str, Any]:
    return ANSWER


def _fastapi(route_class: type[APIRoute] = APIRoute) -> FastAPI:
    """A FastAPI app with the shape of one of Kuberth's reads, and nothing else."""
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="bench-" * 8)
    router = APIRouter(route_class=route_class)
    router.get(PATH_TEMPLATE, response_model=Deployment)(_read)
    app.router.routes.extend(router.routes)  # as Kuberth adopts its routes
    return app


def _serve(side: str, port: int) -> None:
    import uvicorn

    route_class = BoundedJSONRoute if side == "planned" else APIRoute
    app: Any = _raw if side == "raw" else _fastapi(route_class)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


async def _load(url: str, seconds: float, clients: int) -> tuple[list[float], int]:
    """Closed loop: ``clients`` connections, each sending its next request on an answer."""
    latencies: list[float] = []
    failed = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:

        async def client() -> None:
            nonlocal failed
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = await http.get(url, headers={"Authorization": "Bearer kbt_bench"})
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    failed += 1

        await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, failed


def _start(side: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.framework", side, str(port)])
    url = f"http://127.0.0.1:{port}{PATH}"
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = httpx.get(url, timeout=1)
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the {side} server did not start") from None
            time.sleep(0.1)
            continue
        if answer.status_code != 200:
            process.kill()
            raise RuntimeError(f"the {side} server answered {answer.status_code}: {answer.text}")
        return process, url


def run(kubeconfig: Path, quick: bool) -> list[Report]:
    """Rounds of both sides at each concurrency; the Kubernetes plane is not used."""
    rounds, seconds = (3, 3.0) if quick else (5, 8.0)
    cpu: dict[tuple[str, int], list[float]] = {}
    latency: dict[tuple[str, int], list[float]] = {}
    failures: dict[tuple[str, int], int] = {}
    for number in range(rounds):
        order = SIDES if number % 2 == 0 else SIDES[::-1]
        for side in order:
            process, url = _start(side)
            try:
                asyncio.run(_load(url, 1.0, max(CONCURRENCY)))  # warm
                for clients in CONCURRENCY:
                    before = cpu_seconds(process.pid)
                    samples, failed = asyncio.run(_load(url, seconds, clients))
                    used = cpu_seconds(process.pid) - before
                    key = (side, clients)
                    if samples:
                        cpu.setdefault(key, []).append(used / len(samples) * 1e6)
                    latency.setdefault(key, []).extend(s * 1000 for s in samples)
                    failures[key] = failures.get(key, 0) + failed
            finally:
                process.terminate()
                process.wait()
        say(f"framework: round {number + 1} of {rounds}")
    report = Report("framework", "quick" if quick else "full")
    comparisons = (
        ("fastapi", "raw", "FastAPI vs raw ASGI"),
        ("planned", "fastapi", "FastAPI planned vs FastAPI"),
        ("planned", "raw", "FastAPI planned vs raw ASGI"),
    )
    for clients in CONCURRENCY:
        for side, baseline, label in comparisons:
            ours, theirs = (side, clients), (baseline, clients)
            report.add(
                measured(
                    f"CPU per request, {label}, c = {clients}",
                    "µs",
                    mean,
                    cpu.get(ours, []),
                    cpu.get(theirs, []),
                    failed=failures.get(ours, 0),
                    baseline_failed=failures.get(theirs, 0),
                    note="mean of the rounds' server CPU / requests",
                )
            )
            report.add(
                measured(
                    f"p50, {label}, c = {clients}",
                    "ms",
                    p(50),
                    latency.get(ours, []),
                    latency.get(theirs, []),
                    failed=failures.get(ours, 0),
                    baseline_failed=failures.get(theirs, 0),
                )
            )
    return [report]


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
