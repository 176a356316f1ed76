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
    NamespaceTerminatingError,
    NotFoundError,
    UpstreamError,
)
from kuberth.storage.kubernetes import errors
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
        (401, UpstreamError),
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


@pytest.mark.parametrize(
    ("code", "reason", "kubernetes", "domain"),
    [
        (400, "BadRequest", errors.KubernetesBadRequestError, BadRequestError),
        (403, "Forbidden", errors.KubernetesForbiddenError, ForbiddenError),
        (404, "NotFound", errors.KubernetesNotFoundError, NotFoundError),
        (409, "AlreadyExists", errors.KubernetesAlreadyExistsError, ConflictError),
        (409, "Conflict", errors.KubernetesConflictError, ConflictError),
        (410, "Gone", errors.KubernetesGoneError, BadRequestError),
        (410, "Expired", errors.KubernetesExpiredError, BadRequestError),
        (422, "Invalid", errors.KubernetesInvalidError, InvalidInputError),
        (429, "TooManyRequests", errors.KubernetesTooManyRequestsError, KubernetesUnavailableError),
        (500, "InternalError", errors.KubernetesInternalError, UpstreamError),
        (401, "Unauthorized", errors.KubernetesUnauthorizedError, UpstreamError),
        (504, "Timeout", errors.KubernetesTimeoutError, KubernetesUnavailableError),
    ],
)
def test_each_reason_is_its_own_class_and_the_domain_error_it_means(
    code: int, reason: str, kubernetes: type[KuberthError], domain: type[KuberthError]
) -> None:
    """The class by the Status's reason, with the domain error's HTTP status and error code, and
    the message the domain error had before (so the HTTP edge renders it as before)."""
    error = translate_error(code, _status(code, reason, "m"), {}, what="thing", retry_after=5)
    assert type(error) is kubernetes
    assert isinstance(error, errors.KubernetesError)
    assert isinstance(error, domain)
    assert error.status_code == domain.status_code
    assert error.error == domain.error
    assert error.status == errors.Status(code, reason, "m")
    plain = translate_error(code, _status(code, "X", "m"), {}, what="thing", retry_after=5)
    assert (error.message, error.field) == (plain.message, plain.field)


def test_every_reason_of_kubernetes_is_in_the_table_at_its_code() -> None:
    assert len(errors.BY_REASON) == 18  # metav1.StatusReason, less Unknown ("")
    for reason, cls in errors.BY_REASON.items():
        assert cls.reason == reason
        error = translate_error(
            cls.code, _status(cls.code, reason, "m"), {}, what="w", retry_after=1
        )
        assert type(error) is cls


def test_a_taken_name_and_a_stale_version_are_both_409_but_not_the_same_error() -> None:
    taken = translate_error(409, _status(409, "AlreadyExists", "m"), {}, what="w", retry_after=5)
    stale = translate_error(409, _status(409, "Conflict", "m"), {}, what="w", retry_after=5)
    assert not isinstance(taken, errors.KubernetesConflictError)
    assert not isinstance(stale, errors.KubernetesAlreadyExistsError)


def test_a_reason_at_another_code_is_judged_by_its_code() -> None:
    """An admission webhook may answer any reason at any code: only Kubernetes' own pairs are
    classified."""
    error = translate_error(403, _status(403, "NotFound", "m"), {}, what="w", retry_after=5)
    assert type(error) is ForbiddenError


def test_a_namespace_being_deleted_is_told_by_its_cause() -> None:
    causes = [
        {
            "reason": "NamespaceTerminating",
            "message": "namespace x is being terminated",
            "field": "metadata.namespace",
        }
    ]
    body = _status(403, "Forbidden", "unable to create new content in namespace x", causes)
    error = translate_error(403, body, {}, what="w", retry_after=5)
    assert type(error) is errors.KubernetesNamespaceTerminatingError
    assert isinstance(error, NamespaceTerminatingError)
    assert not isinstance(error, ForbiddenError)  # a conflict with its state, not a refusal
    assert error.field is None


def test_invalid_keeps_every_cause() -> None:
    causes = [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.a"},
        {"reason": "FieldValueInvalid", "message": "bad", "field": "spec.b"},
    ]
    error = translate_error(
        422, _status(422, "Invalid", "X is invalid", causes), {}, what="x", retry_after=5
    )
    assert isinstance(error, errors.KubernetesInvalidError)
    assert error.field == "spec.a"
    assert error.status.causes == (
        errors.Cause("FieldValueRequired", "Required value", "spec.a"),
        errors.Cause("FieldValueInvalid", "bad", "spec.b"),
    )


def test_a_busy_answer_waits_as_asked() -> None:
    body = _status(429, "TooManyRequests", "slow down")
    error = translate_error(429, body, {"Retry-After": "9"}, what="x", retry_after=5)
    assert isinstance(error, errors.KubernetesTooManyRequestsError)
    assert error.retry_after == 9
    assert error.message == "the Kubernetes API server is busy (429): slow down"


def test_kuberths_own_credentials_refused_is_not_the_clients_fault() -> None:
    """Kuberth calls with its own credentials whatever the tenant sent: a 401 is a 502 that says
    whose credentials, never a 4xx the client would try to fix."""
    body = _status(401, "Unauthorized", "Unauthorized")
    error = translate_error(401, body, {}, what="x", retry_after=5)
    assert isinstance(error, errors.KubernetesUnauthorizedError)
    assert error.status_code == 502
    assert error.field is None
    assert error.message == (
        "the Kubernetes API server did not accept Kuberth's own credentials (401): Unauthorized"
    )


def test_a_server_timeout_is_busy_and_says_when_to_come_back() -> None:
    body = _status(500, "ServerTimeout", "the server cannot complete the requested operation")
    error = translate_error(500, body, {"Retry-After": "2"}, what="x", retry_after=5)
    assert isinstance(error, errors.KubernetesServerTimeoutError)
    assert isinstance(error, KubernetesUnavailableError)
    assert (error.status_code, error.retry_after) == (503, 2)
    assert error.message.startswith("the Kubernetes API server is busy (500): ")


def test_expired_is_gone() -> None:
    """A watch's "too old resource version" (Expired) is caught wherever Gone is."""
    assert issubclass(errors.KubernetesExpiredError, errors.KubernetesGoneError)


def test_a_prefixed_kubernetes_error_keeps_its_class_and_status() -> None:
    error = translate_error(409, _status(409, "Conflict", "m"), {}, what="w", retry_after=5)
    assert isinstance(error, errors.KubernetesConflictError)
    prefixed = error.prefixed("updating the app")
    assert type(prefixed) is errors.KubernetesConflictError
    assert prefixed.message == "updating the app: m"
    assert prefixed.status == error.status


def test_a_watch_error_event_is_read_as_the_same_status() -> None:
    """An ERROR event's object is a Status without a response around it: its own code counts."""
    event_object = json.loads(_status(410, "Expired", "too old resource version: 1 (300)"))
    status = errors.Status.of(event_object)
    assert (status.code, status.reason) == (410, "Expired")
    error = errors.from_status(status, what="w", retry_after=5)
    assert isinstance(error, errors.KubernetesExpiredError)
