"""The one JSON error shape, rendered once for every error a client can see."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from kuberth.exceptions import KuberthError, TooManyRequestsError, UnavailableError

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """Every error response of the API has this shape."""

    error: str
    message: str
    field: str | None = None


def _response(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


async def _kuberth_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KuberthError)
    headers = None
    if isinstance(exc, UnavailableError | TooManyRequestsError):
        headers = {"Retry-After": str(exc.retry_after)}
    body = ErrorBody(error=exc.error, message=exc.message, field=exc.field)
    return _response(exc.status_code, body, headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        # Not a field's value: the body cannot be read at all (its loc is a character offset).
        context = first.get("ctx")
        detail = context.get("error") if isinstance(context, dict) else None
        message = "the body is not valid JSON" + (f" ({detail})" if detail else "")
        return _response(400, ErrorBody(error="bad_request", message=message))
    # ("body", "name") -> "name": the field as the client wrote it, without FastAPI's prefix.
    # A dict's bad key is reported at (..., key, "[key]"): the key itself names the field.
    location = [
        str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "[key]")
    ]
    field = ".".join(location) or None
    where = field or ("body" if tuple(first.get("loc", ()))[:1] == ("body",) else None)
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return _response(422, ErrorBody(error="invalid_request", message=message, field=field))


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches({**request.scope, "method": "GET"})
            if match != Match.NONE:
                methods |= route.methods
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        400: "bad_request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
    }
    body = ErrorBody(error=codes.get(exc.status_code, "http_error"), message=str(exc.detail))
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return _response(exc.status_code, body, headers or None)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    body = ErrorBody(error="internal_error", message="an unexpected error occurred; it was logged")
    return _response(500, body)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _unexpected)
    app.add_exception_handler(KuberthError, _kuberth_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Not signed in, or the token is invalid",
    403: "Not allowed",
    404: "Not found, or not yours",
    409: "Conflict with the current state",
    422: "A field's value is invalid; `field` names it",
    429: "Over a per-user limit (request rate, long waits); retry after `Retry-After` seconds",
    502: "Kubernetes failed to answer (e.g. no kubelet could serve a pod's log)",
    503: "A dependency is unreachable; retry after `Retry-After` seconds",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the errors a route can answer with, all of the one shape."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}
