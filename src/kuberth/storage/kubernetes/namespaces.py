"""Namespaces: the resource verbs, plus waiting for a deletion to finish with a watch."""

from __future__ import annotations

from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.resources import Kind, ResourceStorage
from kuberth.storage.kubernetes.watching import Watched, watch_until


class NamespaceStorage(ResourceStorage):
    kind = Kind("Namespace", "v1", "namespaces", namespaced=False)

    async def wait_for_deletion(self, name: str, *, since: JSON, timeout: float) -> Watched:
        """Wait until the namespace is gone ("deleted"; else "timeout"), watching from ``since``
        (the DELETE response), so no event between the DELETE and the watch can be missed.

        As Kuberth itself: a terminating namespace loses its tenant's RoleBinding before it is
        gone, so the tenant could no longer watch it.
        """
        return await watch_until(self, name, since=since, timeout=timeout)
