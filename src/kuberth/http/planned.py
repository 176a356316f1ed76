"""FastAPI's handling of a request without a body, with the per-route work done once.

FastAPI 0.165 solves a route's dependencies from scratch on every request: for every dependency
and parameter it asks the same questions of the route's declaration again (is this annotation a
sequence, a model, a JSON field? is this callable a generator, a coroutine? which aliases, which
cache key?) and walks the tree recursively, reading the query, headers and cookies for each
dependency. On a GET of one Deployment that was about an eighth of Kuberth's CPU, more than any
other single part of the framework (py-spy, see docs/design.md).

A :class:`Plan` answers those questions once, when the route is made. A request then reads its
values, validates each with the same pydantic field, calls the same dependencies in the same order
with the same per-request cache, and ends as FastAPI's handler does: the same validation errors in
the same order, the same serialization of the answer through the response model, the same status
code and empty body where the status allows none.

It covers what Kuberth's bodiless routes declare: path, query, header and cookie parameters;
dependencies that are coroutine functions, awaitable objects (``HTTPBearer``) or plain functions
(run in a worker thread, as FastAPI does); a ``Request`` parameter; a response model and a
response class. A route that declares anything else (a body, a dependency with ``yield`` or a
concurrency limit, a ``Response``, ``BackgroundTasks`` or ``SecurityScopes`` parameter, a
parameter model or a ``Json`` field, a streaming endpoint) gets FastAPI's own handler:
:func:`plan` returns ``None``. Neither feeds FastAPI's OpenTelemetry, which Kuberth turns
off, nor sees ``app.dependency_overrides``, which no adopted route sees (see
:mod:`kuberth.http.routing`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi._compat import ModelField
from fastapi._compat.shared import field_annotation_is_sequence
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import (
    Dependant,
    _get_cache_key,
    _is_async_gen_callable,
    _is_coroutine_callable,
    _is_gen_callable,
)
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _validate_value_with_model_field,
)
from fastapi.exceptions import EndpointContext, RequestValidationError
from fastapi.routing import (
    APIRoute,
    _extract_endpoint_context,
    run_endpoint_function,
    serialize_response,
)
from fastapi.sse import EventSourceResponse
from fastapi.telemetry._api import _validation_failed
from fastapi.utils import is_body_allowed_for_status_code
from pydantic_core import PydanticUndefined
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class _Param:
    """A path, query, header or cookie parameter, with what FastAPI would work out per request."""

    field: ModelField
    where: str  # "path", "query", "header" or "cookie": the first item of an error's loc
    keys: tuple[str, ...]  # the names it may be sent as, in order of preference
    sequence: bool  # a list: every value sent under its name

    @classmethod
    def of(cls, field: ModelField) -> _Param:
        assert isinstance(field.field_info, params.Param)
        return cls(
            field,
            field.field_info.in_.value,
            tuple(key for _, key in _get_param_aliases(field)),
            field_annotation_is_sequence(field.field_info.annotation),
        )

    def solve(self, received: Mapping[str, Any], errors: list[Any]) -> Any:
        """The parameter's value, validated; ``PydanticUndefined`` after adding its errors."""
        key = next((key for key in self.keys if key in received), self.keys[0])
        value: Any
        if self.sequence and isinstance(received, ImmutableMultiDict | Headers):
            value = received.getlist(key)
        else:
            value = received.get(key)
        if value is None or (self.sequence and len(value) == 0):
            value = PydanticUndefined  # missing: required, or the default
        validated, found = _validate_value_with_model_field(
            field=self.field, value=value, values={}, loc=(self.where, key)
        )
        if found:
            errors.extend(found)
            return PydanticUndefined
        return validated


@dataclass(frozen=True, slots=True)
class Plan:
    """A dependant (a route's endpoint or one of its dependencies), planned."""

    call: Callable[..., Any]
    name: str | None  # the parameter it fills in the dependant that needs it
    cache_key: Hashable
    use_cache: bool
    is_coroutine: bool
    dependencies: tuple[Plan, ...]
    #: Path, query, header and cookie parameters, in that order (FastAPI's order of errors).
    params: tuple[_Param, ...]
    request_names: tuple[str, ...]  # parameters that receive the Request itself

    async def solve(
        self, request: Request, cache: dict[Hashable, Any], errors: list[Any]
    ) -> dict[str, Any]:
        """The keyword arguments of ``call`` for ``request``; errors found are added to
        ``errors`` (and the arguments are then incomplete), as solve_dependencies does."""
        values: dict[str, Any] = {}
        for dependency in self.dependencies:
            found: list[Any] = []
            arguments = await dependency.solve(request, cache, found)
            if found:
                errors.extend(found)
                continue
            if dependency.use_cache and dependency.cache_key in cache:
                solved = cache[dependency.cache_key]
            elif dependency.is_coroutine:
                solved = await dependency.call(**arguments)
            else:
                solved = await run_in_threadpool(dependency.call, **arguments)
            if dependency.name is not None:
                values[dependency.name] = solved
            cache.setdefault(dependency.cache_key, solved)
        for param in self.params:
            value = param.solve(_received(request, param.where), errors)
            if value is not PydanticUndefined:
                values[param.field.name] = value
        for name in self.request_names:
            values[name] = request
        return values


def _received(request: Request, where: str) -> Mapping[str, Any]:
    if where == "path":
        return request.path_params
    if where == "query":
        return request.query_params
    if where == "header":
        return request.headers
    return request.cookies


def _plan_dependant(dependant: Dependant) -> Plan | None:
    """The dependant's plan, or None when it uses something a plan does not cover."""
    call = dependant.call
    if (
        call is None
        or dependant.body_params
        or dependant.concurrency is not None
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.websocket_param_name
        or _is_gen_callable(call)
        or _is_async_gen_callable(call)
    ):
        return None
    fields = [
        *dependant.path_params,
        *dependant.query_params,
        *dependant.header_params,
        *dependant.cookie_params,
    ]
    if any(_get_param_model(field) is not None or _is_json_field(field) for field in fields):
        return None
    dependencies = [_plan_dependant(sub) for sub in dependant.dependencies]
    if None in dependencies:
        return None
    return Plan(
        call=call,
        name=dependant.name,
        cache_key=_get_cache_key(dependant=dependant),
        use_cache=dependant.use_cache,
        is_coroutine=_is_coroutine_callable(call),
        dependencies=tuple(plan for plan in dependencies if plan is not None),
        params=tuple(_Param.of(field) for field in fields),
        request_names=tuple(
            name
            for name in (dependant.http_connection_param_name, dependant.request_param_name)
            if name
        ),
    )


def plan(route: APIRoute) -> Handler | None:
    """The route's handler, planned; None when the route needs FastAPI's own."""
    dependant = route.dependant
    declared = route.response_class
    default_class = isinstance(declared, DefaultPlaceholder)
    response_class: type[Response] = (
        declared.value if isinstance(declared, DefaultPlaceholder) else declared
    )
    if (
        route.body_field is not None
        or route.stream_item_field is not None
        or route.is_json_stream
        or issubclass(response_class, EventSourceResponse)
    ):
        return None
    endpoint = _plan_dependant(dependant)
    if endpoint is None:
        return None
    response_field = route.response_field
    #: As FastAPI's handler: the answer serialized straight to JSON bytes by its response model,
    #: unless the route names a response class of its own.
    dump_json = response_field is not None and default_class
    #: A response class's own default status (a redirect's 307) unless the route names one.
    status: dict[str, Any] = {} if route.status_code is None else {"status_code": route.status_code}

    def endpoint_context(request: Request) -> EndpointContext:
        """As FastAPI's handler names the endpoint in its errors: its source file and line are
        read at the route's first request and kept by FastAPI (at start-up, reading them for
        every route took 31 ms)."""
        context = _extract_endpoint_context(endpoint.call)
        root = request.scope.get("root_path", "").rstrip("/")
        return {**context, "path": f"{request.method} {root}{dependant.path}"}

    async def handle(request: Request) -> Response:
        errors: list[Any] = []
        values = await endpoint.solve(request, {}, errors)
        if errors:
            error = RequestValidationError(
                errors, body=None, endpoint_ctx=endpoint_context(request)
            )
            _validation_failed(error)
            raise error
        answer = await run_endpoint_function(
            dependant=dependant, values=values, is_coroutine=endpoint.is_coroutine
        )
        if isinstance(answer, Response):
            return answer
        content = await serialize_response(
            field=response_field,
            response_content=answer,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
            is_coroutine=endpoint.is_coroutine,
            endpoint_ctx=endpoint_context(request),
            dump_json=dump_json,
        )
        response = (
            Response(content=content, media_type="application/json", **status)
            if dump_json
            else response_class(content, **status)
        )
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response

    return handle
