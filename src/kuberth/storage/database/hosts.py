"""Which Ingress holds which host. One row per host: two claims cannot both win."""

from __future__ import annotations

import datetime
from collections.abc import Collection

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kuberth.storage.database.models import IngressHost
from kuberth.storage.database.users import insert_for


class HostStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def claim(
        self, hosts: Collection[str], *, namespace: str, ingress: str, owner_id: int
    ) -> IngressHost | None:
        """Claim every host for this Ingress; returns the first row held by another, if any.

        The caller's transaction is left to roll back on a conflict, so nothing stays claimed.
        """
        insert = insert_for(self._session)
        for host in hosts:
            self._session.execute(
                insert(IngressHost)
                .values(host=host, namespace=namespace, ingress=ingress, owner_id=owner_id)
                .on_conflict_do_nothing()
            )
        rows = self._session.scalars(select(IngressHost).where(IngressHost.host.in_(list(hosts))))
        for row in rows:
            if (row.namespace, row.ingress) != (namespace, ingress):
                return row
        return None

    def release(self, *, namespace: str, ingress: str, keep: Collection[str] = ()) -> None:
        """Release this Ingress's hosts, except ``keep``."""
        self._session.execute(
            delete(IngressHost).where(
                IngressHost.namespace == namespace,
                IngressHost.ingress == ingress,
                IngressHost.host.not_in(list(keep)),
            )
        )

    def older_than(self, cutoff: datetime.datetime) -> list[IngressHost]:
        return list(
            self._session.scalars(select(IngressHost).where(IngressHost.created_at < cutoff))
        )

    def release_one(self, host: str, *, namespace: str, ingress: str) -> None:
        """Release one host if this Ingress still holds it (another may have claimed it since)."""
        self._session.execute(
            delete(IngressHost).where(
                IngressHost.host == host,
                IngressHost.namespace == namespace,
                IngressHost.ingress == ingress,
            )
        )
