"""One watch under every wait on one object: until a condition holds, it is deleted, or time is up.

Kuberth waits on objects in requests (a namespace's deletion, a Deployment's rollout); every such
wait treats a lost watch the same way, here, on the event loop and holding no thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import anyio

from kuberth.exceptions import KubernetesUnavailableError
from kuberth.storage.kubernetes.api import JSON, Identity
from kuberth.storage.kubernetes.resources import ResourceStorage

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
