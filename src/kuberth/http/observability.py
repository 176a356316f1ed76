"""Per-request observability: a request id, one access log record, and Prometheus metrics.

Requests are labelled by their route's template (``/api/v1/namespaces/{namespace}``), never the
raw path: one series per route, however many tenants there are. Each replica serves its own
``/metrics`` (one process each); Prometheus adds them up.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kuberth.http.logs import RequestContext, end_request, start_request

access_log = logging.getLogger("kuberth.access")

REQUEST_ID_HEADER = "X-Request-ID"
#: An id a client (or a proxy in front) sends is kept only when it is this harmless.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
#: The route label of requests that matched no route (404s): one series for all of them.
UNMATCHED = "unmatched"

REQUESTS = Counter(
    "kuberth_http_requests_total",
    "HTTP requests served, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "kuberth_http_request_duration_seconds",
    "Time to serve an HTTP request, by method, route template and status",
    ["method", "route", "status"],
    # Up to the longest waits a request may ask for (a rollout watch, a namespace deletion).
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


def request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is a sane one (so logs join up across services), else
    a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


@functools.cache
def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    """The two series of a method, route and status, found once: ``labels`` costs more than the
    increment and observation together. Bounded as the series themselves are (routes are
    templates)."""
    return (
        REQUESTS.labels(method=method, route=route, status=status),
        LATENCY.labels(method=method, route=route, status=status),
    )


class ObservabilityMiddleware:
    """Outermost: times everything, and its context covers every record the request writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(request_id(scope), scope)
        token = start_request(context)
        status = 500  # unless a response starts: an exception escaped every handler
        header = (REQUEST_ID_HEADER.lower().encode(), context.request_id.encode())
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = scope["method"]
            counter, histogram = _series(method, route, status)
            counter.inc()
            histogram.observe(seconds)
            access_log.info(
                "%s %s %d",
                method,
                scope["path"],
                status,
                extra={
                    "method": method,
                    "path": scope["path"],  # without the query: it carries OAuth codes
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            end_request(token)


def install_metrics(app: FastAPI) -> None:
    """``GET /metrics`` in Prometheus' text format, and the middleware that feeds it."""

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(ObservabilityMiddleware)
