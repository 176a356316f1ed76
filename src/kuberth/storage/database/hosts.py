"""Which Ingress holds which host. One row per host: two claims cannot both win."""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Delete, Select, delete, select
from sqlalchemy.orm import Session

from kuberth.storage.database.models import IngressHost, TenantNamespace
from kuberth.storage.database.users import insert_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def _claims(
    session: Session | AsyncSession,
    hosts: Collection[str],
    *,
    namespace: str,
    ingress: str,
    owner_id: int,
) -> list[Any]:
    """One INSERT per host that leaves a host already held as it is."""
    insert = insert_for(session)
    return [
        insert(IngressHost)
        .values(host=host, namespace=namespace, ingress=ingress, owner_id=owner_id)
        .on_conflict_do_nothing()
        for host in hosts
    ]


def _holders(hosts: Collection[str]) -> Select[IngressHost]:
    return select(IngressHost).where(IngressHost.host.in_(list(hosts)))


def _other(rows: Iterable[IngressHost], *, namespace: str, ingress: str) -> IngressHost | None:
    return next((r for r in rows if (r.namespace, r.ingress) != (namespace, ingress)), None)


def _release(*, namespace: str, ingress: str, keep: Collection[str]) -> Delete:
    return delete(IngressHost).where(
        IngressHost.namespace == namespace,
        IngressHost.ingress == ingress,
        IngressHost.host.not_in(list(keep)),
    )


async def aclaim(
    session: AsyncSession, hosts: Collection[str], *, namespace: str, ingress: str, owner_id: int
) -> IngressHost | None:
    """:meth:`HostStore.claim` on the event loop."""
    for statement in _claims(
        session, hosts, namespace=namespace, ingress=ingress, owner_id=owner_id
    ):
        await session.execute(statement)
    rows = await session.scalars(_holders(hosts))
    return _other(rows, namespace=namespace, ingress=ingress)


async def anamespace_owners(session: AsyncSession, names: Collection[str]) -> dict[str, int]:
    """Which of these names are Kuberth namespaces, and their owners' GitHub ids: what the host
    rules read, in the claim's own transaction."""
    statement = select(TenantNamespace.name, TenantNamespace.owner_id).where(
        TenantNamespace.name.in_(sorted(set(names)))
    )
    return {row.name: row.owner_id for row in await session.execute(statement)}


async def arelease(
    session: AsyncSession, *, namespace: str, ingress: str, keep: Collection[str] = ()
) -> None:
    """:meth:`HostStore.release` on the event loop."""
    await session.execute(_release(namespace=namespace, ingress=ingress, keep=keep))


async def aolder_than(session: AsyncSession, cutoff: datetime.datetime) -> list[IngressHost]:
    """Every claim made before ``cutoff``."""
    return list(await session.scalars(select(IngressHost).where(IngressHost.created_at < cutoff)))


async def arelease_one(session: AsyncSession, host: str, *, namespace: str, ingress: str) -> None:
    """Release one host if this Ingress still holds it (another may have claimed it since)."""
    await session.execute(
        delete(IngressHost).where(
            IngressHost.host == host,
            IngressHost.namespace == namespace,
            IngressHost.ingress == ingress,
        )
    )


class HostStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def claim(
        self, hosts: Collection[str], *, namespace: str, ingress: str, owner_id: int
    ) -> IngressHost | None:
        """Claim every host for this Ingress; returns the first row held by another, if any.

        The caller's transaction is left to roll back on a conflict, so nothing stays claimed.
        """
        for statement in _claims(
            self._session, hosts, namespace=namespace, ingress=ingress, owner_id=owner_id
        ):
            self._session.execute(statement)
        rows = self._session.scalars(_holders(hosts))
        return _other(rows, namespace=namespace, ingress=ingress)

    def release(self, *, namespace: str, ingress: str, keep: Collection[str] = ()) -> None:
        """Release this Ingress's hosts, except ``keep``."""
        self._session.execute(_release(namespace=namespace, ingress=ingress, keep=keep))
