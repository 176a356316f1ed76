"""The audit log: every change a user made or tried, who, what, which object, result, when."""

from __future__ import annotations

import datetime
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from kuberth.storage.database.models import AuditEvent

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def audit_event(
    *,
    actor_id: int,
    actor_login: str,
    action: str,
    kind: str,
    namespace: str | None,
    name: str | None,
    result: str,
    detail: str | None = None,
) -> dict[str, Any]:
    """An audit log row's values, stamped now: what :meth:`AuditStore.record` and
    :func:`arecord` insert."""
    return {
        "at": datetime.datetime.now(datetime.UTC),
        "actor_id": actor_id,
        "actor_login": actor_login,
        "action": action,
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "result": result,
        "detail": (detail or "")[:1000] or None,
    }


async def arecord(session: AsyncSession, event: dict[str, Any]) -> None:
    """:meth:`AuditStore.record` on the event loop."""
    connection = await session.connection()
    await connection.execute(insert(AuditEvent), event)


class AuditStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, event: dict[str, Any]) -> None:
        """Insert an :func:`audit_event`."""
        # A Core INSERT in the session's transaction: every change writes one, and the ORM's
        # unit of work (flush, identity map) cost more than the rest of recording it.
        self._session.connection().execute(insert(AuditEvent), event)


async def alist(
    connection: AsyncConnection,
    *,
    namespaces: Collection[str] | None,
    actor_id: int | None = None,
    limit: int = 100,
) -> list[Row[Any]]:
    """Newest first, as plain rows in AuditEvent's column order; ``namespaces`` None means all
    (operators). With ``actor_id``, also that user's own changes outside namespaces (tokens)."""
    statement = select(*AuditEvent.__table__.columns).order_by(AuditEvent.id.desc()).limit(limit)
    if namespaces is not None:
        in_namespaces = AuditEvent.namespace.in_(list(namespaces))
        if actor_id is None:
            statement = statement.where(in_namespaces)
        else:
            own = (AuditEvent.actor_id == actor_id) & AuditEvent.namespace.is_(None)
            statement = statement.where(in_namespaces | own)
    return list(await connection.execute(statement))
