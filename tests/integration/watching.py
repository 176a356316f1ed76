"""Waiting on Kubernetes objects with watches, never with sleep loops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from tests.timing import scaled


def wait_until(
    list_fn: Callable[..., Any],
    name: str,
    predicate: Callable[[Any], bool],
    *,
    timeout: int = 60,
    **kwargs: Any,
) -> Any:
    """Watch one object by name until ``predicate(object)`` holds; return that object."""
    seconds = round(scaled(timeout))
    stream = watch.Watch().stream(
        list_fn, field_selector=f"metadata.name={name}", timeout_seconds=seconds, **kwargs
    )
    last = None
    for event in stream:
        last = event["object"]
        if event["type"] != "DELETED" and predicate(last):
            return last
    raise AssertionError(f"{name} did not reach the expected state in {seconds}s; last: {last}")


def wait_deleted(
    read_fn: Callable[..., Any],
    list_fn: Callable[..., Any],
    name: str,
    *,
    timeout: int = 60,
    **kwargs: Any,
) -> None:
    """Return once the object is gone: a watch from its last resourceVersion sees DELETED."""
    try:
        current = read_fn(name, **kwargs)
    except ApiException as error:
        if error.status == 404:
            return
        raise
    stream = watch.Watch().stream(
        list_fn,
        field_selector=f"metadata.name={name}",
        resource_version=current.metadata.resource_version,
        timeout_seconds=round(scaled(timeout)),
        **kwargs,
    )
    for event in stream:
        if event["type"] == "DELETED":
            return
    raise AssertionError(f"{name} was not deleted within {round(scaled(timeout))}s")
