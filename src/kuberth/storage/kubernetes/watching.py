"""Watches on the event loop, holding no thread: one object until a condition holds, and a whole
collection followed from a list.

Kuberth waits on objects in requests (a namespace's deletion, a Deployment's rollout); every such
wait treats a lost watch the same way, here (:func:`watch_until`). The watch-fed copies (informers)
list a collection and then watch it from the list's version (:func:`list_every`,
:func:`watch_every`): a watch that ends in ERROR (410 Gone) or is cut costs a new list, as a wait's
costs a new read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import anyio

from kuberth.exceptions import KubernetesUnavailableError, KuberthError
from kuberth.storage.kubernetes.api import JSON, Identity, KubernetesApi
from kuberth.storage.kubernetes.resources import Kind, ResourceStorage

#: How long to pause after a watch was cut (or could not be opened) before reading again: an API
#: server restarting refuses connections for a while, and without a pause the retries would spin.
CUT_PAUSE = 0.5


@dataclass(frozen=True)
class Watched:
    """How a wait ended (``until`` held, the object was deleted, or the time was up) and the
    last state of the object seen (on deletion, the deleted object as last seen)."""

    ended: Literal["done", "deleted", "timeout"]
    last_seen: JSON


async def watch_until(
    storage: ResourceStorage,
    name: str,
    *,
    namespace: str | None = None,
    since: JSON,
    until: Callable[[JSON], bool] | None = None,
    timeout: float,
    identity: Identity | None = None,
) -> Watched:
    """Watch the object ``name`` from ``since`` (its state as last read or written) until
    ``until(object)`` holds, it is deleted, or ``timeout`` seconds pass.

    Watching from ``since``'s own resourceVersion misses no change made after it; bookmarks keep
    that version current while nothing changes. A watch that ends in an ERROR event (410 Gone: the
    version is too old) or is cut (an API server restart; after a short pause) costs one read and a
    new watch from the read's version; a read that finds nothing means deleted. ``identity`` None
    acts as Kuberth itself.

    Raises:
        The errors of :meth:`ResourceStorage.aread` and :meth:`ResourceStorage.awatch` other than
        KubernetesUnavailableError, which is retried until the deadline.
    """
    last = since
    if until is not None and until(since):
        return Watched("done", since)
    version: str = since.get("metadata", {}).get("resourceVersion", "")
    deadline = anyio.current_time() + timeout
    # A dead connection sends nothing, so the deadline bounds everything, not only the server.
    with anyio.move_on_after(timeout):
        while True:
            try:
                watch = storage.awatch(
                    name,
                    namespace=namespace,
                    timeout=max(deadline - anyio.current_time(), 0.001),
                    resource_version=version,
                    identity=identity,
                    bookmarks=True,
                )
                async with watch as events:
                    async for event in events:
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":  # 410 Gone, typically: read afresh, below
                            break
                        if kind == "DELETED":
                            return Watched("deleted", obj)
                        version = obj.get("metadata", {}).get("resourceVersion", version)
                        if kind in ("ADDED", "MODIFIED"):
                            last = obj
                            if until is not None and until(obj):
                                return Watched("done", obj)
                    else:  # the server ended the watch: a new one goes on from ``version``
                        continue
            except KubernetesUnavailableError:
                await anyio.sleep(CUT_PAUSE)  # bounded by the deadline: cancelled at it
            try:
                current = await storage.aread(name, namespace=namespace, identity=identity)
            except KubernetesUnavailableError:
                continue  # still away: the next watch fails too, and pauses
            if current is None:
                return Watched("deleted", last)
            last = current
            version = current["metadata"]["resourceVersion"]
            if until is not None and until(current):
                return Watched("done", current)
    return Watched("timeout", last)


class WatchEndedError(Exception):
    """A collection's watch cannot go on from the version held (an ERROR event, 410 Gone after a
    compaction, or a refusal at its start): list again."""


async def list_every(
    api: KubernetesApi,
    kind: Kind,
    *,
    label_selector: str,
    page_size: int,
    each: Callable[[JSON], None],
) -> str:
    """Hand every object of ``kind`` in the cluster that matches the selector to ``each``, a page at
    a time (memory is one page); returns the list's resourceVersion, to watch from.

    Raises:
        The errors of :meth:`KubernetesApi.arequest`.
    """
    query: dict[str, str | int | bool] = {"labelSelector": label_selector, "limit": page_size}
    while True:
        page = await api.arequest("GET", kind.path(), query=query, what=f"every {kind.plural}")
        for item in page.get("items") or []:
            each(item)
        metadata = page.get("metadata") or {}
        token = metadata.get("continue")
        if not token:
            return str(metadata.get("resourceVersion", ""))
        query["continue"] = token


async def watch_every(
    api: KubernetesApi,
    kind: Kind,
    *,
    label_selector: str,
    version: str,
    timeout: float,
    each: Callable[[str, JSON], None],
) -> str:
    """Hand each change to the selected objects from ``version`` on to ``each(type, object)``
    (ADDED, MODIFIED, DELETED) until the server ends the watch after ``timeout`` seconds; returns
    the version to watch on from. Bookmarks keep it current while nothing changes, so a watch that
    simply ended resumes without a new list.

    Raises:
        WatchEndedError: the server cannot go on from ``version``; list again.
        KubernetesUnavailableError: the watch was cut off, could not be opened, or went silent
            (a dead connection sends nothing) well past ``timeout``.
    """
    query: dict[str, str | int | bool] = {
        "labelSelector": label_selector,
        "resourceVersion": version,
        "allowWatchBookmarks": True,
    }
    what = f"every {kind.plural}"
    try:
        async with asyncio.timeout(timeout + api.timeout):
            async with api.awatch(kind.path(), query=query, timeout=timeout, what=what) as events:
                async for event in events:
                    change, obj = event.get("type"), event.get("object") or {}
                    if change == "ERROR":
                        raise WatchEndedError(str(obj.get("message") or obj.get("code")))
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if change != "BOOKMARK":
                        each(str(change), obj)
    except TimeoutError as error:
        raise KubernetesUnavailableError(
            f"the watch on {what} went silent", retry_after=api.retry_after
        ) from error
    except KubernetesUnavailableError:
        raise
    except KuberthError as error:  # 410 Gone at the start of the watch, among others
        raise WatchEndedError(error.message) from error
    return version
