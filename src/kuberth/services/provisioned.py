"""Counting the tenant namespaces Kuberth provisions, for /metrics.

Counted where a namespace is created, in the storage the provisioner is given: the one request
that makes it. Racing first sign-ins of one user (on any replica) count it once, since the losers'
creates are 409s, and a sign-in that adopts an existing namespace does not count.
"""

from __future__ import annotations

from prometheus_client import Counter

from kuberth.services.builders.tenant import PERSONAL
from kuberth.storage.kubernetes.api import JSON, Identity
from kuberth.storage.kubernetes.namespaces import NamespaceStorage

PROVISIONED = Counter(
    "kuberth_tenant_namespaces_provisioned_total",
    "Tenant namespaces this replica created; personal=true ones are new tenants",
    ["personal"],
)


class CountedNamespaceStorage(NamespaceStorage):
    """Namespace storage that counts each namespace it creates."""

    def create(
        self, body: JSON, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON:
        created = super().create(body, namespace=namespace, identity=identity)
        _count(body)
        return created

    async def acreate(
        self, body: JSON, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON:
        created = await super().acreate(body, namespace=namespace, identity=identity)
        _count(body)
        return created


def _count(body: JSON) -> None:
    """One more namespace made, personal or not as its labels say."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    PROVISIONED.labels(personal="true" if labels.get(PERSONAL) == "true" else "false").inc()
