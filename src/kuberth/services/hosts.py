"""Who holds which Ingress host, for every writer: Kuberth's API and its admission webhook.

Two sources answer it. The database's claims (one row per host, so two claims cannot both win, on
any number of replicas) hold every host written through Kuberth's API, and — when the admission
webhook is on — every host written with kubectl too. A watch-fed index of every Ingress in the
cluster (host -> Ingresses) covers what was made before either, or by someone Kuberth never sees
(an operator writing straight to Kubernetes, a namespace Kuberth does not manage). A host the
index shows elsewhere is confirmed with one read of that Ingress before a claim is refused: the
index may lag a deletion by a moment, and the answer must not.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Collection, Iterable

from kuberth.exceptions import ConflictError
from kuberth.services import summaries
from kuberth.storage.database import hosts as host_rows
from kuberth.storage.database.engine import AsyncSessions
from kuberth.storage.database.models import IngressHost
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.informer import Informer
from kuberth.storage.kubernetes.resources import IngressStorage

log = logging.getLogger(__name__)

#: What the index keeps of an Ingress: its hosts.
Hosts = tuple[str, ...]


def ingress_hosts(obj: JSON) -> Hosts:
    """Every host an Ingress serves or presents a certificate for: its rules' and its TLS
    sections' (what Kuberth claims for it). Also the index's projection of an Ingress."""
    spec = obj.get("spec") or {}
    tls_hosts = [h for tls in spec.get("tls") or [] for h in tls.get("hosts") or []]
    return tuple(sorted({*summaries.ingress_hosts(obj), *(h for h in tls_hosts if h)}))


def hosts_of(hosts: Hosts) -> Iterable[str]:
    """The index's keys of a projection."""
    return hosts


def held_by(holder: IngressHost, *, namespace: str) -> ConflictError:
    """The 409 for a host another Ingress claimed: named when it is in the same namespace."""
    mine = holder.namespace == namespace
    where = f"ingress {holder.ingress}" if mine else "another tenant's ingress"
    return ConflictError(f"host {holder.host} is already used by {where}", field="host")


class HostClaims:
    def __init__(
        self,
        *,
        asessions: AsyncSessions,
        ingresses: IngressStorage,
        index: Informer[Hosts],
        index_wait: float,
    ) -> None:
        self._asessions = asessions
        self._ingresses = ingresses
        self._index = index
        self._index_wait = index_wait

    def start(self) -> None:
        """Start filling the index now rather than at the first claim (the webhook's first answer
        must not wait for a list of every Ingress)."""
        self._index.start()

    async def aclaim(
        self, hosts: Collection[str], *, namespace: str, ingress: str, owner_id: int
    ) -> None:
        """Hold the hosts for this Ingress, or a 409 naming who has them (and hold nothing): the
        database, the wait for the index's first list and the read of an Ingress that holds a
        host (see :meth:`aheld_elsewhere`).

        Raises:
            ConflictError: another Ingress holds one of them.
            KubernetesUnavailableError: the index is not ready.
        """
        if not hosts:
            return
        async with self._asessions() as session:  # a conflict raises inside: it all rolls back
            holder = await host_rows.aclaim(
                session, hosts, namespace=namespace, ingress=ingress, owner_id=owner_id
            )
            if holder is not None:
                raise held_by(holder, namespace=namespace)
        # Outside the transaction: a call to Kubernetes must not hold one open.
        clash = await self.aheld_elsewhere(hosts, namespace=namespace, ingress=ingress)
        if clash is not None:
            await self.arelease(namespace=namespace, ingress=ingress)
            raise ConflictError(f"host {clash} is already used", field="host")

    async def aheld_elsewhere(
        self, hosts: Collection[str], *, namespace: str, ingress: str
    ) -> str | None:
        """A host an Ingress other than this one serves, as the index says and a read confirms;
        on the event loop (the wait for the index's first list included: no thread is held).

        Raises:
            KubernetesUnavailableError: the index is not ready.
        """
        if not hosts:
            return None
        await self._index.arequire_synced(self._index_wait)
        for host in sorted(hosts):
            for other_namespace, other in sorted(self._index.holders(host)):
                if (other_namespace, other) == (namespace, ingress):
                    continue
                if host in await self._astored_hosts(other_namespace, other):
                    return host
        return None

    async def arelease(self, *, namespace: str, ingress: str, keep: Collection[str] = ()) -> None:
        """Release this Ingress's hosts, except ``keep``."""
        async with self._asessions() as session:
            await host_rows.arelease(session, namespace=namespace, ingress=ingress, keep=keep)

    async def _astored_hosts(self, namespace: str, name: str) -> Hosts:
        # A list narrowed to one name, not a GET: the same permission the index needs.
        found = await self._ingresses.alist(
            namespace=namespace, field_selector=f"metadata.name={name}"
        )
        items = found.get("items") or []
        return ingress_hosts(items[0]) if items else ()

    async def arelease_orphans(self, *, older_than: datetime.timedelta) -> int:
        """Release claims of Ingresses that do not exist (a namespace deleted with its Ingresses,
        a kubectl write refused after the webhook claimed its hosts); returns how many. On the
        event loop: the reconcile pass's step.

        Only claims older than ``older_than`` go: a younger one may belong to a write in flight.
        The claims are read in one transaction and the orphans released in another, none held
        open while Kubernetes is asked: a release deletes a claim only if the same Ingress still
        holds it, so a claim made in between is kept.
        """
        await self._index.arequire_synced(self._index_wait)
        cutoff = datetime.datetime.now(datetime.UTC) - older_than
        async with self._asessions() as session:
            rows = await host_rows.aolder_than(session, cutoff)
        orphans = []
        for row in rows:
            if (row.namespace, row.ingress) in self._index.holders(row.host):
                continue
            if row.host in await self._astored_hosts(row.namespace, row.ingress):
                continue  # the index lags a creation: the Ingress is there
            orphans.append(row)
        if not orphans:
            return 0
        async with self._asessions() as session:
            for row in orphans:
                await host_rows.arelease_one(
                    session, row.host, namespace=row.namespace, ingress=row.ingress
                )
        log.info("released %d host claims of Ingresses that no longer exist", len(orphans))
        return len(orphans)
