"""Errors keep their kind, status and details when a step's name is put in front of them."""

from __future__ import annotations

from kuberth.exceptions import InvalidInputError, KubernetesUnavailableError


def test_prefixed_keeps_the_field() -> None:
    error = InvalidInputError("must be a DNS label", field="name").prefixed("creating the service")
    assert isinstance(error, InvalidInputError)
    assert (error.message, error.field) == ("creating the service: must be a DNS label", "name")
    assert str(error) == error.message


def test_prefixed_keeps_retry_after() -> None:
    """A 503's Retry-After survives (copying it once crashed: its __init__ needs the value)."""
    original = KubernetesUnavailableError("throttled", retry_after=7)
    error = original.prefixed("creating the ingress")
    assert isinstance(error, KubernetesUnavailableError)
    assert error.retry_after == 7
    assert error.message == "creating the ingress: throttled"
    assert original.message == "throttled"
