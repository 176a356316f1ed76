"""Namespaces: the resource verbs, plus waiting for a deletion to finish with a watch."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kuberth.exceptions import KubernetesUnavailableError, KuberthError
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.resources import Kind, ResourceStorage


@dataclass(frozen=True)
class DeletionResult:
    """Whether the namespace is gone, and if not, how it looked when the wait ended."""

    gone: bool
    last_seen: JSON | None


class NamespaceStorage(ResourceStorage):
    kind = Kind("Namespace", "v1", "namespaces", namespaced=False)

    def wait_for_deletion(self, name: str, *, since: JSON, timeout: float) -> DeletionResult:
        """Wait until the namespace is gone, watching from ``since`` (the DELETE response).

        Watching from the deletion's own resourceVersion means no event between the DELETE and
        the watch can be missed. An expired resourceVersion (410) or a cut connection (API server
        restart) costs one read and a new watch, until the deadline.
        """
        deadline = time.monotonic() + timeout
        last: JSON = since
        resource_version = since.get("metadata", {}).get("resourceVersion", "")
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                for event in self._api.watch(
                    self.kind.path(),
                    query={
                        "fieldSelector": f"metadata.name={name}",
                        "resourceVersion": resource_version,
                        "allowWatchBookmarks": "true",
                    },
                    timeout=remaining,
                    what=f"namespace {name}",
                ):
                    kind = event.get("type")
                    obj = event.get("object", {})
                    if kind == "DELETED":
                        return DeletionResult(gone=True, last_seen=obj)
                    if kind == "ERROR":  # typically 410 Gone: our resourceVersion is too old
                        break
                    resource_version = obj.get("metadata", {}).get(
                        "resourceVersion", resource_version
                    )
                    if kind in ("ADDED", "MODIFIED"):
                        last = obj
                else:
                    if deadline - time.monotonic() <= 0:
                        break
            except KubernetesUnavailableError:
                if deadline - time.monotonic() <= 0:
                    break
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))  # API server restarting
            try:
                current = self.read(name)
            except KuberthError:
                continue
            if current is None:
                return DeletionResult(gone=True, last_seen=last)
            last = current
            resource_version = current["metadata"]["resourceVersion"]
        return DeletionResult(gone=False, last_seen=last)
