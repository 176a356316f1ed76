"""JSON request bodies, parsed with a bound on how deeply they nest.

Python's decoder recurses once per level: a body of ten thousand nested arrays exhausts the
interpreter's recursion limit (a 500, and a reset connection), and a few hundred levels that do
parse can do the same later in code that walks the object. No Kubernetes object nests anywhere
near :data:`MAX_DEPTH`, so deeper bodies are refused where they are parsed, with a 400 that says
why. Every route reads JSON through :class:`BoundedJSONRoute`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from kuberth.http.planned import plan

#: Levels of arrays and objects a body may have; a Deployment with every field set has about 15.
MAX_DEPTH = 64


class NestedTooDeeplyError(ValueError):
    """The body is JSON, but nests deeper than :data:`MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"the body nests arrays and objects more than {MAX_DEPTH} levels deep")


def loads(data: str | bytes) -> Any:
    """``json.loads`` that refuses bodies nested deeper than :data:`MAX_DEPTH`.

    Raises:
        NestedTooDeeplyError: too deep (also when the decoder itself ran out of recursion).
        ValueError: not JSON at all.
    """
    try:
        value = json.loads(data)
    except RecursionError:
        raise NestedTooDeeplyError from None
    if _deeper_than(value, MAX_DEPTH):
        raise NestedTooDeeplyError
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (iteratively: no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


class _BoundedJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads(await self.body())
            except NestedTooDeeplyError as error:
                # FastAPI passes an HTTPException on; any other error would become its generic
                # "There was an error parsing the body".
                raise HTTPException(status_code=400, detail=str(error)) from None
        return self._json


class BoundedJSONRoute(APIRoute):
    """A route whose JSON body is parsed by :func:`loads` (FastAPI's documented way to change
    how a request is read: a custom Request class, installed by the route). A route without a
    body is handled by its :func:`~kuberth.http.planned.plan` where it has one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if self.body_field is None:  # reads no JSON body (a GET, a DELETE): nothing to bound
            return plan(self) or super().get_route_handler()
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            return await handler(_BoundedJSONRequest(request.scope, request.receive))

        return bounded
