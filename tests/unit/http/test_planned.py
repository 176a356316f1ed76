"""A planned handler answers every request exactly as FastAPI's own handler does.

The same endpoints are declared twice, once with FastAPI's route class and once with one whose
bodiless routes are planned (:func:`kuberth.http.planned.plan`), and each request is sent to
both: status, headers and body must be the same, and the dependencies called the same way.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Annotated, Any, Literal

import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Body,
    Cookie,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from kuberth.http.planned import plan

calls: Counter[str] = Counter()
threads: dict[str, int] = {}  # the thread each ran on

_bearer = HTTPBearer(auto_error=False)


async def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    calls["caller"] += 1
    threads["loop"] = threading.get_ident()
    if credentials is None:
        raise HTTPException(401, "who are you?")
    return credentials.credentials


async def counted(request: Request) -> str:
    calls["counted"] += 1
    return request.url.path


def paging(
    offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=50)] = 10
) -> tuple[int, int]:
    threads["paging"] = threading.get_ident()
    return offset, limit


class Item(BaseModel):
    name: str
    size: int
    note: str | None = None


def endpoints(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    router = APIRouter(route_class=route_class)

    @router.get("/items/{name}", response_model=Item)
    async def read(
        name: Annotated[str, Path(pattern="^[a-z]+$", max_length=8)],
        who: Annotated[str, Depends(caller)],
        again: Annotated[str, Depends(counted)],
        once_more: Annotated[str, Depends(counted)],
        fresh: Annotated[str, Depends(counted, use_cache=False)],
        size: Annotated[int, Query(ge=0)] = 1,
        full: bool = False,
        tags: Annotated[list[Literal["a", "b"]], Query()] = [],  # noqa: B006 - FastAPI copies it
        x_trace: Annotated[str | None, Header()] = None,
        flavour: Annotated[str | None, Cookie()] = None,
    ) -> dict[str, Any]:
        note = ",".join([who, again, str(full), *tags, x_trace or "", flavour or ""])
        return {"name": name, "size": size, "note": note, "dropped": "not in the model"}

    @router.get("/pages", response_model=list[int], response_model_exclude_none=True)
    async def pages(
        page: Annotated[tuple[int, int], Depends(paging)], who: Annotated[str, Depends(caller)]
    ) -> list[int]:
        return list(range(*page))

    @router.get("/required")
    async def required(
        must: Annotated[int, Query(alias="must-have")], also: Annotated[float, Query()]
    ) -> dict[str, Any]:
        return {"must": must, "also": also}

    @router.delete("/items/{name}", status_code=204)
    async def delete(name: str, who: Annotated[str, Depends(caller)]) -> None:
        return None

    @router.get("/plain")
    def plain(answer: int = 42) -> Response:
        threads["plain"] = threading.get_ident()
        return PlainTextResponse(f"answer {answer}", headers={"X-Answer": str(answer)})

    @router.get("/text", response_class=PlainTextResponse)
    async def text(words: Annotated[list[str], Query()]) -> str:
        return " ".join(words)

    @router.get("/elsewhere", response_class=RedirectResponse)
    async def elsewhere(to: str = "/pages") -> str:
        return to

    @router.get("/broken", response_model=Item)
    async def broken() -> dict[str, Any]:
        return {"name": "no size"}

    app.include_router(router)
    return app


class Planned(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = plan(self)
        assert handler is not None, f"{self.path} was not planned"
        return handler


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(endpoints(APIRoute), raise_server_exceptions=False) as fastapi,
        TestClient(endpoints(Planned), raise_server_exceptions=False) as planned,
    ):
        yield fastapi, planned


BEARER = {"Authorization": "Bearer t0ken"}

REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/items/web", BEARER),
    ("GET", "/items/web?size=3&full=true&tags=a&tags=b", {**BEARER, "X-Trace": "t1"}),
    ("GET", "/items/web", {**BEARER, "Cookie": "flavour=mint"}),
    ("GET", "/items/web?tags=", BEARER),  # an empty value of a list: its default
    ("GET", "/items/web", {}),  # the dependency's 401 comes before the parameters' errors
    ("GET", "/items/WEB?size=-1&full=maybe&tags=c", BEARER),  # every error, in FastAPI's order
    ("GET", "/items/toolongname", BEARER),
    ("GET", "/pages?offset=2&limit=5", BEARER),
    ("GET", "/pages?limit=99&offset=-1", BEARER),  # a sub-dependency's errors
    ("GET", "/pages?limit=99", {}),  # a sub-dependency's errors, and another's 401
    ("GET", "/required?must-have=1&also=2.5", {}),
    ("GET", "/required?must=1", {}),  # the alias is the name; both missing
    ("GET", "/required?must-have=x&also=nan", {}),
    ("DELETE", "/items/web", BEARER),
    ("DELETE", "/items/web", {}),
    ("GET", "/plain?answer=7", {}),
    ("GET", "/plain?answer=seven", {}),
    ("GET", "/text?words=a&words=b", {}),  # a response class of the route's own
    ("GET", "/text", {}),
    ("GET", "/elsewhere?to=/items/web", {}),  # its class's own status (307)
    ("GET", "/broken", {}),  # the answer fails its model: a 500 from both
]


@pytest.mark.parametrize(("method", "url", "headers"), REQUESTS)
def test_the_same_answer_as_fastapi(
    clients: tuple[TestClient, TestClient], method: str, url: str, headers: dict[str, str]
) -> None:
    fastapi, planned = clients
    calls.clear()
    expected = fastapi.request(method, url, headers=headers)
    expected_calls = dict(calls)
    calls.clear()
    answer = planned.request(method, url, headers=headers)
    assert (answer.status_code, answer.content) == (expected.status_code, expected.content)
    assert answer.headers == expected.headers
    assert dict(calls) == expected_calls


def test_dependencies_are_cached_per_request_unless_told(
    clients: tuple[TestClient, TestClient],
) -> None:
    _, planned = clients
    calls.clear()
    assert planned.get("/items/web", headers=BEARER).status_code == 200
    # Named twice and cached, plus once uncached.
    assert calls == {"caller": 1, "counted": 2}


def test_plain_functions_run_in_a_worker_thread(clients: tuple[TestClient, TestClient]) -> None:
    """As FastAPI runs them: a plain def dependency or endpoint never runs on the loop."""
    _, planned = clients
    threads.clear()
    assert planned.get("/pages", headers=BEARER).status_code == 200
    loop = threads["loop"]
    assert planned.get("/plain").status_code == 200
    assert threads["paging"] != loop
    assert threads["plain"] != loop


async def _generated() -> AsyncIterator[int]:
    yield 1


def test_what_a_plan_does_not_cover_is_left_to_fastapi() -> None:
    app = FastAPI()

    @app.post("/body")
    async def body(item: Annotated[Item, Body()]) -> None: ...

    @app.get("/yields")
    async def yields(value: Annotated[int, Depends(_generated)]) -> None: ...

    @app.get("/response")
    async def response(response: Response) -> None: ...

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> None: ...

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[int]:
        yield 1

    @app.get("/model")
    async def model(query: Annotated[Item, Query()]) -> None: ...

    @app.get("/planned")
    async def planned(value: int = 1) -> None: ...

    routes = {route.path: route for route in app.routes if isinstance(route, APIRoute)}
    assert {path for path, route in routes.items() if plan(route) is not None} == {"/planned"}
