"""Kubernetes error responses become honest, typed errors."""

from __future__ import annotations

import json

import pytest

from kuberth.exceptions import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    KubernetesUnavailableError,
    KuberthError,
    NotFoundError,
    UpstreamError,
)
from kuberth.storage.kubernetes.api import Identity, translate_error


def _status(
    code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None
) -> bytes:
    body = {
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    if causes:
        body["details"] = {"causes": causes}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, InvalidInputError),
        (429, KubernetesUnavailableError),
        (500, UpstreamError),
        (503, KubernetesUnavailableError),
    ],
)
def test_statuses_map_to_typed_errors(status: int, expected: type[KuberthError]) -> None:
    error = translate_error(status, _status(status, "X", "m"), {}, what="thing", retry_after=5)
    assert type(error) is expected


def test_validation_errors_name_the_field() -> None:
    causes = [{"reason": "FieldValueInvalid", "message": "bad", "field": "spec.rules[0].host"}]
    error = translate_error(
        422, _status(422, "Invalid", "Ingress is invalid", causes), {}, what="i", retry_after=5
    )
    assert isinstance(error, InvalidInputError)
    assert error.field == "spec.rules[0].host"
    assert error.message == "Ingress is invalid"


def test_throttling_honours_retry_after() -> None:
    error = translate_error(429, b"", {"Retry-After": "17"}, what="x", retry_after=5)
    assert isinstance(error, KubernetesUnavailableError)
    assert error.retry_after == 17


def test_not_found_names_the_object_only() -> None:
    error = translate_error(
        404,
        _status(404, "NotFound", 'namespaces "x" not found'),
        {},
        what="namespace x",
        retry_after=5,
    )
    assert isinstance(error, NotFoundError)
    assert error.message == "namespace x not found"


def test_impersonation_headers() -> None:
    headers = Identity("kuberth:42", ("kuberth:tenants",)).headers()
    assert headers == {"Impersonate-User": "kuberth:42", "Impersonate-Group": "kuberth:tenants"}


def test_writes_into_a_terminating_namespace_are_conflicts() -> None:
    body = _status(
        403,
        "Forbidden",
        'deployments.apps "w" is forbidden: unable to create new content in namespace x '
        "because it is being terminated",
    )
    assert isinstance(translate_error(403, body, {}, what="w", retry_after=5), ConflictError)
