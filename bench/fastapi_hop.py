"""The minimal hop as a FastAPI app: the floor of any FastAPI service in Kuberth's place.

The raw hop (:mod:`bench.hop`) is the floor of any Python service. This is the same hop written
as Kuberth's routes are, and nothing more: Kuberth's route class (its bodiless routes planned,
:mod:`kuberth.http.planned`), the caller as a dependency (a 401 through FastAPI's
HTTPException), the path's parts as parameters, a POST's body as a JSON object, and the API
server's answers passed on as they are (no response model, no middleware). What it costs above
the raw hop is the framework's share of Kuberth's distance to the floor; what Kuberth costs above
it is Kuberth's own. Served by ``python -m bench.hop ... fastapi``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request, Response

from bench.hop import Hop
from kuberth.http.json_bodies import BoundedJSONRoute


async def _hop(request: Request) -> Hop:
    hop: Hop = request.app.state.hop
    return hop


async def _caller(request: Request) -> int:
    hop: Hop = request.app.state.hop
    github_id = hop.caller(request.headers.get("authorization", "").encode())
    if github_id is None:
        raise HTTPException(401, "unauthorized")
    return github_id


HopDep = Annotated[Hop, Depends(_hop)]
Caller = Annotated[int, Depends(_caller)]
router = APIRouter(prefix="/api/v1/namespaces/{namespace}", route_class=BoundedJSONRoute)


def _answer(reply: tuple[int, bytes]) -> Response:
    status, content = reply
    return Response(content, status_code=status, media_type="application/json")


@router.get("/{kind}")
async def list_items(namespace: str, kind: str, github_id: Caller, hop: HopDep) -> Response:
    return _answer(await hop.forward("GET", github_id, namespace, kind))


@router.get("/{kind}/{name}")
async def read(namespace: str, kind: str, name: str, github_id: Caller, hop: HopDep) -> Response:
    return _answer(await hop.forward("GET", github_id, namespace, kind, name))


@router.post("/services")
async def create(
    namespace: str, github_id: Caller, hop: HopDep, body: Annotated[dict[str, Any], Body()]
) -> Response:
    return _answer(await hop.forward("POST", github_id, namespace, "services", body=body))


@router.delete("/{kind}/{name}")
async def delete(namespace: str, kind: str, name: str, github_id: Caller, hop: HopDep) -> Response:
    return _answer(await hop.forward("DELETE", github_id, namespace, kind, name))


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app(hop: Hop) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hop.open()
        yield
        await hop.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)
    app.state.hop = hop
    app.router.routes.extend(router.routes)  # as Kuberth adopts its routes
    app.get("/healthz")(healthz)
    return app
