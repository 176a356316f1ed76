"""The logs of a Deployment's or an app's pods: recent lines, or followed as they come.

A follow is a long wait (``fairness``): it holds one of the caller's slots, is bounded by
``KUBERTH_LOG_FOLLOW_TIMEOUT``, streams on the event loop (no thread of any pool), and ends with
every upstream stream closed when the client goes away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import Gauge
from starlette.types import Receive, Scope, Send

from kuberth.http.dependencies import CurrentPrincipal, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.fairness import fairness, tenant_key
from kuberth.http.routes.namespaces import NamespaceName
from kuberth.http.routing import api_router
from kuberth.http.services import Services
from kuberth.services.logs import (
    SINCE_PATTERN,
    TAIL_DEFAULT,
    TAIL_MAX,
    Emit,
    LogRequest,
    parse_since,
)
from kuberth.services.principal import Principal

router = api_router(prefix="/api/v1/namespaces/{namespace}")

TEXT = "text/plain; charset=utf-8"

FOLLOWS = Gauge(
    "kuberth_log_follows_open",
    "Log follows streaming now (each closes its upstream streams before it stops counting)",
)

Tail = Annotated[
    int,
    Query(ge=0, le=TAIL_MAX, description=f"Lines per container, the newest (at most {TAIL_MAX})"),
]
Since = Annotated[
    str | None,
    Query(
        pattern=SINCE_PATTERN,
        description="Only lines newer than this: seconds (`300`) or a duration (`30s`, `5m`, `2h`)",
    ),
]
Container = Annotated[
    str | None,
    Query(
        max_length=253,
        description="One container (default or empty: every container of the pods); one the "
        "pods do not have is a 404 naming `container`",
    ),
]
Previous = Annotated[
    bool, Query(description="The previous instance of each container: the one that crashed")
]
Follow = Annotated[
    bool,
    Query(
        description="Keep streaming new lines as they are written, interleaved across pods and "
        "containers, until the pods stop, the client goes away or the server's limit "
        "(`KUBERTH_LOG_FOLLOW_TIMEOUT`) ends it; counts as one of the caller's long waits"
    ),
]
Pod = Annotated[
    str | None,
    Query(max_length=253, description="One pod of the Deployment (default or empty: every pod)"),
]

DESCRIPTION = (
    "Plain text, each line prefixed as `kubectl logs --prefix` does: "
    "`[pod/<pod>/<container>] <line>`; pod after pod (oldest first) unless following. "
    "Read as the caller (impersonated). A container that has not started yet is a 409 naming "
    "`container`; one the pods do not have, a 404 naming it."
)
#: The lines are text, the errors the one JSON shape: each says its own media type (with a
#: ``model``, FastAPI would list an error under the route's text/plain).
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/plain": {"schema": {"type": "string"}}},
        "description": "The lines, prefixed",
    },
    **{
        code: {
            "description": entry["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        for code, entry in error_responses(401, 404, 409, 422, 429, 502, 503).items()
    },
}


class FollowResponse(Response):
    """Streams a follow's lines until it ends, the client goes away or ``timeout`` passes; the
    slot it holds is freed once every upstream stream is closed."""

    media_type = TEXT

    def __init__(
        self,
        follow: Callable[[Emit], Any],
        *,
        timeout: float,
        release: Callable[[], None],
    ) -> None:
        # As StreamingResponse does: no body, so no Content-Length (the lines are sent chunked).
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
        self._follow = follow
        self._timeout = timeout
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        FOLLOWS.inc()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            lock = anyio.Lock()

            async def emit(text: str) -> None:
                async with lock:  # one body message at a time, whole lines only
                    await send(
                        {"type": "http.response.body", "body": text.encode(), "more_body": True}
                    )

            async with anyio.create_task_group() as group:

                async def until_disconnected() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                async def stream() -> None:
                    with anyio.move_on_after(self._timeout):
                        await self._follow(emit)
                    group.cancel_scope.cancel()

                group.start_soon(until_disconnected)
                group.start_soon(stream)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._release()
            FOLLOWS.dec()


@dataclass(frozen=True)
class LogOptions:
    """What the caller asked for, the same for a Deployment's logs and an app's."""

    asked: LogRequest
    follow: bool


async def log_options(
    tail: Tail = TAIL_DEFAULT,
    since: Since = None,
    container: Container = None,
    previous: Previous = False,
    follow: Follow = False,
    pod: Pod = None,
) -> LogOptions:
    """Async although it awaits nothing: FastAPI runs a plain ``def`` dependency in a worker
    thread, a hand-off (and back) on every request for a few comparisons."""
    asked = LogRequest(
        tail=tail,
        since=parse_since(since),
        container=container or None,
        pod=pod or None,
        previous=previous,
    )
    return LogOptions(asked, follow)


Options = Annotated[LogOptions, Depends(log_options)]


async def _logs(
    request: Request,
    principal: Principal,
    services: Services,
    namespace: str,
    name: str,
    options: LogOptions,
    *,
    app: bool,
) -> Response:
    asked, follow = options.asked, options.follow
    release: Callable[[], None] = lambda: None  # noqa: E731 - nothing held yet
    limit = services.settings.log_follow_timeout
    if follow:  # admitted (or refused) before any work, as every long wait is
        release = fairness(request).long_waits.hold(tenant_key(principal.github_id), limit)
    try:
        sources = await services.logs.sources(principal, namespace, name, asked, app=app)
        if not follow:
            text = await services.logs.read(principal, namespace, sources, asked)
            return PlainTextResponse(text, media_type=TEXT)
        return FollowResponse(
            partial(services.logs.follow, principal, namespace, sources, asked),
            timeout=limit,
            release=release,
        )
    except BaseException:
        release()
        raise


@router.get(
    "/deployments/{name}/logs",
    tags=["Deployments"],
    summary="The logs of a Deployment's pods (recent lines, or followed)",
    description=DESCRIPTION,
    response_class=PlainTextResponse,
    responses=RESPONSES,
)
async def deployment_logs(
    request: Request,
    namespace: NamespaceName,
    name: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    options: Options,
) -> Response:
    return await _logs(request, principal, services, namespace, name, options, app=False)


@router.get(
    "/apps/{name}/logs",
    tags=["Apps"],
    summary="The logs of an app's pods (recent lines, or followed)",
    description=DESCRIPTION,
    response_class=PlainTextResponse,
    responses=RESPONSES,
)
async def app_logs(
    request: Request,
    namespace: NamespaceName,
    name: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    options: Options,
) -> Response:
    return await _logs(request, principal, services, namespace, name, options, app=True)
