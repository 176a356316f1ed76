"""Errors a client of Kuberth may see, each with its own code and HTTP status.

Services and storage raise these; the HTTP layer renders every one of them the same way, once, so
a route never builds an error response by hand.
"""

from __future__ import annotations

from typing import ClassVar, Self


class KuberthError(Exception):
    """Base of every error shown to a client as ``{"error", "message", "field"}``."""

    error: ClassVar[str] = "internal_error"
    status_code: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def prefixed(self, context: str) -> Self:
        """The same error, its message saying where it happened ("creating the service: ...")."""
        message = f"{context}: {self.message}"
        # Built without __init__ (copy.copy would call it with the message alone, which fails
        # for errors with required keyword arguments, such as a 503's Retry-After).
        copy = type(self).__new__(type(self), message)
        copy.__dict__.update(self.__dict__)
        copy.message = message
        copy.args = (message,)
        return copy


class InvalidInputError(KuberthError):
    """The request is well-formed but a field's value is not acceptable."""

    error = "invalid"
    status_code = 422


class BadRequestError(KuberthError):
    """The request cannot be understood (e.g. a failed OAuth state check)."""

    error = "bad_request"
    status_code = 400


class UnauthenticatedError(KuberthError):
    error = "unauthenticated"
    status_code = 401


class ForbiddenError(KuberthError):
    error = "forbidden"
    status_code = 403


class CrossSiteRequestError(ForbiddenError):
    """A write authenticated by the session cookie that does not show it comes from Kuberth's
    own pages (another site's Origin or Sec-Fetch-Site, no CSRF token); ``field`` names the header.
    """

    error = "cross_site_request"


class NotFoundError(KuberthError):
    """Not there, or not the caller's: the two are indistinguishable on purpose."""

    error = "not_found"
    status_code = 404


class ConflictError(KuberthError):
    error = "conflict"
    status_code = 409


class NamespaceTerminatingError(ConflictError):
    """A write into a namespace that is being deleted: a conflict with its state, not a refusal
    of the caller's rights (Kubernetes' NamespaceLifecycle answers 403)."""


class TooManyRequestsError(KuberthError):
    """The caller is over a fairness limit (its request rate, its long waits); retry after
    ``retry_after`` seconds."""

    error = "too_many_requests"
    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(KuberthError):
    """Kubernetes (or GitHub) answered with an error of its own."""

    error = "upstream_error"
    status_code = 502


class UnavailableError(KuberthError):
    """A dependency is unreachable or overloaded; the client should retry later."""

    error = "unavailable"
    status_code = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class KubernetesUnavailableError(UnavailableError):
    """The Kubernetes API server could not be reached, did not answer in time, or throttled us."""

    error = "kubernetes_unavailable"


class DatabaseUnavailableError(UnavailableError):
    error = "database_unavailable"
