"""Which Ingress holds which host. One row per host: two claims cannot both win."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from kuberth.storage.database.models import IngressHost, TenantNamespace
from kuberth.storage.database.users import insert_for

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


async def aclaim(
    session: AsyncSession, hosts: Collection[str], *, namespace: str, ingress: str, owner_id: int
) -> IngressHost | None:
    """Claim every host for this Ingress; returns the first row held by another, if any.

    One INSERT per host leaves a host already held as it is. The caller's transaction is left to
    roll back on a conflict, so nothing stays claimed.
    """
    insert = insert_for(session)
    for host in hosts:
        await session.execute(
            insert(IngressHost)
            .values(host=host, namespace=namespace, ingress=ingress, owner_id=owner_id)
            .on_conflict_do_nothing()
        )
    rows = await session.scalars(select(IngressHost).where(IngressHost.host.in_(list(hosts))))
    return next((r for r in rows if (r.namespace, r.ingress) != (namespace, ingress)), None)


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
    """Release this Ingress's hosts, except ``keep``."""
    await session.execute(
        delete(IngressHost).where(
            IngressHost.namespace == namespace,
            IngressHost.ingress == ingress,
            IngressHost.host.not_in(list(keep)),
        )
    )


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
