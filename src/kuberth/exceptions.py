"""Errors a client of Kuberth may see, each with its own code and HTTP status.

Services raise these; the HTTP layer renders every one of them the same way, once, so a route never
builds an error response by hand.
"""

from __future__ import annotations

from typing import ClassVar


class KuberthError(Exception):
    """Base of every error shown to a client as ``{"error", "message", "field"}``."""

    error: ClassVar[str] = "internal_error"
    status_code: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class KubernetesUnavailableError(KuberthError):
    """The Kubernetes API server could not be reached or did not answer in time."""

    error = "kubernetes_unavailable"
    status_code = 503

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
