"""Kubernetes' own refusals and failures: one class per ``reason`` its Status gives.

The API server says why it refused in a Status: an HTTP code and a machine-readable ``reason``
(NotFound, AlreadyExists, Conflict, ...), which Kubernetes' own clients decide on (client-go's
``IsAlreadyExists``, ``IsConflict``). The code alone cannot tell a name that is taken from a stale
resourceVersion (both 409), nor a compacted watch from a malformed request. :func:`from_status` is
the one place a Status becomes one of these classes (a table keyed by reason).

Each class is also the domain error (:mod:`kuberth.exceptions`) it means to a client when no
service knows better, with the message it always had: the HTTP edge renders it as before. A service
that does know better catches the precise class (provisioning's taken name is
:class:`KubernetesAlreadyExistsError`, not any 409) and raises its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

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

#: The cause NamespaceLifecycle admission adds to its 403 (``v1.NamespaceTerminatingCause``).
NAMESPACE_TERMINATING = "NamespaceTerminating"
#: Its message, for a Status without the cause (API servers before 1.17).
_TERMINATING_MESSAGE = "because it is being terminated"


@dataclass(frozen=True, slots=True)
class Cause:
    """One of a Status's ``details.causes``: what is wrong (``type``, the cause's ``reason``:
    FieldValueInvalid, NamespaceTerminating, ...), in which field if one."""

    type: str
    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """What the API server said of a refused request (a ``metav1.Status``), with its HTTP code.

    Whatever a body does not say is empty (a proxy's page in front of the API server says
    nothing: its first 300 bytes are the message).
    """

    code: int
    reason: str = ""
    message: str = ""
    kind: str = ""
    name: str = ""
    causes: tuple[Cause, ...] = ()

    @classmethod
    def parse(cls, code: int, data: bytes) -> Status:
        """The Status of a response's body."""
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        message = body.get("message") or data[:300].decode(errors="replace") or str(code)
        return cls.of(body, code=code, message=str(message))

    @classmethod
    def of(cls, body: dict[str, Any], *, code: int | None = None, message: str = "") -> Status:
        """The Status of a decoded body (a watch's ERROR event carries one as its object);
        ``code`` is the response's when there is one, else the body's own."""
        details = body.get("details") or {}
        causes = tuple(
            Cause(str(c.get("reason") or ""), str(c.get("message") or ""), c.get("field") or None)
            for c in details.get("causes") or []
        )
        return cls(
            code=code if code is not None else int(body.get("code") or 0),
            reason=str(body.get("reason") or ""),
            message=message or str(body.get("message") or ""),
            kind=str(details.get("kind") or ""),
            name=str(details.get("name") or ""),
            causes=causes,
        )

    @property
    def field(self) -> str | None:
        """The first field a cause names."""
        return next((cause.field for cause in self.causes if cause.field), None)


def _not_found(what: str) -> str:
    """A 404 names only the object (Kubernetes' message would name its plural and group)."""
    return f"{what} not found"


def _busy(status: Status) -> str:
    return f"the Kubernetes API server is busy ({status.code}): {status.message}"


def _failed(status: Status) -> str:
    return f"the Kubernetes API server failed ({status.code}): {status.message}"


class KubernetesError(KuberthError):
    """The API server refused or failed a request; ``status`` is what it said.

    A subclass stands for one ``reason`` at its ``code`` and is also a domain error (its second
    base), which gives it its error code and HTTP status towards Kuberth's own clients.
    """

    reason: ClassVar[str] = ""
    code: ClassVar[int] = 0
    #: Whether the error names the field of its first cause (a bad value in the request).
    names_field: ClassVar[bool] = False

    def __init__(self, status: Status, *, what: str = "", retry_after: int = 0) -> None:
        """``what`` names the object ("namespace alice"); ``retry_after`` is for the busy ones:
        one signature for every class, so the table makes each the same way."""
        KuberthError.__init__(
            self, self.describe(status, what), field=status.field if self.names_field else None
        )
        self.status = status

    @classmethod
    def describe(cls, status: Status, what: str) -> str:
        """The message a client sees: Kubernetes' own, unless a class says it otherwise."""
        return status.message


class KubernetesBadRequestError(KubernetesError, BadRequestError):
    """The request cannot be decoded (a field of the wrong JSON type, among others)."""

    reason, code, names_field = "BadRequest", 400, True


class KubernetesUnauthorizedError(KubernetesError, UpstreamError):
    """Kuberth's own credentials were not accepted. Kuberth always calls with them (the tenant
    only by impersonation), so this is never the client's fault: a 502 that says so, whatever
    the tenant sent (an expired or revoked service account token, a kubeconfig gone stale)."""

    reason, code = "Unauthorized", 401

    @classmethod
    def describe(cls, status: Status, what: str) -> str:
        return (
            "the Kubernetes API server did not accept Kuberth's own credentials "
            f"({status.code}): {status.message}"
        )


class KubernetesForbiddenError(KubernetesError, ForbiddenError):
    """Authorization (RBAC) or an admission plugin refused."""

    reason, code = "Forbidden", 403


class KubernetesNamespaceTerminatingError(KubernetesError, NamespaceTerminatingError):
    """A Forbidden of NamespaceLifecycle's: a write into a namespace being deleted. Not a
    :class:`KubernetesForbiddenError`: to a client it is a conflict with the namespace's state,
    not a refusal of its rights, and services tell the two apart."""

    reason, code = "Forbidden", 403


class KubernetesNotFoundError(KubernetesError, NotFoundError):
    """The object (or the namespace it was to be made in: ``status.kind``) does not exist."""

    reason, code = "NotFound", 404

    @classmethod
    def describe(cls, status: Status, what: str) -> str:
        return _not_found(what)


class KubernetesMethodNotAllowedError(KubernetesError, BadRequestError):
    reason, code, names_field = "MethodNotAllowed", 405, True


class KubernetesNotAcceptableError(KubernetesError, BadRequestError):
    reason, code, names_field = "NotAcceptable", 406, True


class KubernetesAlreadyExistsError(KubernetesError, ConflictError):
    """A create whose name is taken (also by an object still being deleted)."""

    reason, code = "AlreadyExists", 409


class KubernetesConflictError(KubernetesError, ConflictError):
    """A write conditional on a resourceVersion that is no longer the object's (someone wrote it
    since), or an apply's field conflict."""

    reason, code = "Conflict", 409


class KubernetesGoneError(KubernetesError, BadRequestError):
    """The version asked for is no longer kept (compacted): read or list again."""

    reason, code, names_field = "Gone", 410, True


class KubernetesExpiredError(KubernetesGoneError):
    """Gone, as the API server now says it: a watch or a paged list from a version (or a
    continue token) older than it keeps ("too old resource version")."""

    reason = "Expired"


class KubernetesRequestEntityTooLargeError(KubernetesError, BadRequestError):
    reason, code, names_field = "RequestEntityTooLarge", 413, True


class KubernetesUnsupportedMediaTypeError(KubernetesError, BadRequestError):
    reason, code, names_field = "UnsupportedMediaType", 415, True


class KubernetesInvalidError(KubernetesError, InvalidInputError):
    """Validation refused a value; ``status.causes`` name every field, ``field`` the first."""

    reason, code, names_field = "Invalid", 422, True


class KubernetesBusyError(KubernetesError, KubernetesUnavailableError):
    """The API server asks to be asked again later (``retry_after`` seconds)."""

    @classmethod
    def describe(cls, status: Status, what: str) -> str:
        return _busy(status)

    def __init__(self, status: Status, *, what: str = "", retry_after: int = 0) -> None:
        super().__init__(status, what=what, retry_after=retry_after)
        self.retry_after = retry_after


class KubernetesTooManyRequestsError(KubernetesBusyError):
    """API Priority and Fairness still refused after Kuberth waited as long as it may."""

    reason, code = "TooManyRequests", 429


class KubernetesServiceUnavailableError(KubernetesBusyError):
    reason, code = "ServiceUnavailable", 503


class KubernetesServerTimeoutError(KubernetesBusyError):
    """The server could not finish in time and says the request may be sent again after a wait
    (a 500 with ``retryAfterSeconds``): busy, not broken, so a 503 with Retry-After."""

    reason, code = "ServerTimeout", 500


class KubernetesTimeoutError(KubernetesBusyError):
    """The request could not be completed in time (504); it may have been done."""

    reason, code = "Timeout", 504


class KubernetesServerError(KubernetesError, UpstreamError):
    """A failure on the API server's side."""

    @classmethod
    def describe(cls, status: Status, what: str) -> str:
        return _failed(status)


class KubernetesInternalError(KubernetesServerError):
    reason, code = "InternalError", 500


#: Every reason Kubernetes defines (``metav1.StatusReason``), to its class.
BY_REASON: dict[str, type[KubernetesError]] = {
    cls.reason: cls
    for cls in (
        KubernetesBadRequestError,
        KubernetesUnauthorizedError,
        KubernetesForbiddenError,
        KubernetesNotFoundError,
        KubernetesMethodNotAllowedError,
        KubernetesNotAcceptableError,
        KubernetesAlreadyExistsError,
        KubernetesConflictError,
        KubernetesGoneError,
        KubernetesExpiredError,
        KubernetesRequestEntityTooLargeError,
        KubernetesUnsupportedMediaTypeError,
        KubernetesInvalidError,
        KubernetesTooManyRequestsError,
        KubernetesInternalError,
        KubernetesServerTimeoutError,
        KubernetesServiceUnavailableError,
        KubernetesTimeoutError,
    )
}

#: The codes a client is told to retry after a while (with Retry-After).
BUSY_CODES = frozenset({429, 503, 504})


def from_status(status: Status, *, what: str, retry_after: int) -> KuberthError:
    """The error a refused or failed request raises: ``what`` names the object ("namespace
    alice"), ``retry_after`` is the wait a busy answer asks for.

    A Status whose reason Kubernetes does not define, or does not give at that code (an admission
    webhook's own, or none at all), says only its code: it becomes the domain error the code
    means, with the same message, and is no :class:`KubernetesError` (a service's precise
    ``except`` does not take it for one of Kubernetes' own).
    """
    if status.code == 403 and _terminating(status):
        return KubernetesNamespaceTerminatingError(status)
    cls = BY_REASON.get(status.reason)
    if cls is not None and cls.code == status.code:
        return cls(status, what=what, retry_after=retry_after)
    return _by_code(status, what=what, retry_after=retry_after)


def _terminating(status: Status) -> bool:
    return any(c.type == NAMESPACE_TERMINATING for c in status.causes) or (
        _TERMINATING_MESSAGE in status.message
    )


#: The domain error of a code, for a Status without a reason of Kubernetes' (see from_status).
_DOMAIN_BY_CODE: dict[int, type[KuberthError]] = {
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidInputError,
}


def _by_code(status: Status, *, what: str, retry_after: int) -> KuberthError:
    if status.code in BUSY_CODES:
        return KubernetesUnavailableError(_busy(status), retry_after=retry_after)
    if status.code == 401:  # a proxy in front of the API server may answer it without a reason
        return UpstreamError(KubernetesUnauthorizedError.describe(status, what))
    if status.code >= 500 or status.code < 400:
        return UpstreamError(_failed(status))
    domain = _DOMAIN_BY_CODE.get(status.code, BadRequestError)
    if domain is NotFoundError:
        return NotFoundError(_not_found(what))
    named = domain in (InvalidInputError, BadRequestError)
    return domain(status.message, field=status.field if named else None)
