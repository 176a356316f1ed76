"""Signed-in browsers, by the SHA-256 of the secret their cookie carries."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.orm import Session

from kuberth.storage.database.models import User, WebSession
from kuberth.storage.database.tokens import digest
from kuberth.storage.database.users import OWNER_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


class SessionOwner(NamedTuple):
    """A session and its user, as one row: all a request's authentication needs."""

    session_id: int
    last_seen_at: datetime.datetime
    user_id: int
    login: str
    name: str | None
    revoked_at: datetime.datetime | None
    revoked_reason: str | None
    signup_checked_at: datetime.datetime | None
    #: The user's namespaces, comma-separated (None: none).
    owned_namespaces: str | None


#: One statement, built once: the request path reads plain columns, no ORM objects.
_OWNER = (
    select(
        WebSession.id,
        WebSession.last_seen_at,
        *OWNER_COLUMNS,
    )
    .join(User, User.id == WebSession.user_id)
    .where(WebSession.secret_hash == bindparam("secret_hash"))
)


async def asession_owner(connection: AsyncConnection, secret: str) -> SessionOwner | None:
    """The session's user (revoked or not); None if no such session."""
    row = (await connection.execute(_OWNER, {"secret_hash": digest(secret)})).first()
    return SessionOwner(*row) if row else None


async def atouch(session: AsyncSession, session_id: int, at: datetime.datetime) -> None:
    """Mark the session used now (its idle timeout counts from here)."""
    await session.execute(
        update(WebSession).where(WebSession.id == session_id).values(last_seen_at=at)
    )


async def aend_by_secret(session: AsyncSession, secret: str) -> None:
    """Sign-out: the session ends for every copy of its cookie."""
    await session.execute(delete(WebSession).where(WebSession.secret_hash == digest(secret)))


#: A user's sessions as their list shows them, the most recently used first: plain columns.
_OWNED_BY = (
    select(
        WebSession.id,
        WebSession.user_agent,
        WebSession.created_at,
        WebSession.last_seen_at,
        WebSession.secret_hash,
    )
    .where(WebSession.user_id == bindparam("user_id"))
    .order_by(WebSession.last_seen_at.desc())
)

_END = delete(WebSession).where(
    WebSession.id == bindparam("session_id"), WebSession.user_id == bindparam("user_id")
)


async def aowned_by(connection: AsyncConnection, user_id: int) -> list[Row[Any]]:
    """The user's sessions: id, user_agent, created_at, last_seen_at, secret_hash."""
    return list(await connection.execute(_OWNED_BY, {"user_id": user_id}))


async def aend(session: AsyncSession, *, user_id: int, session_id: int) -> bool:
    """End one of the user's sessions; False when there was no such session of theirs."""
    connection = await session.connection()
    result = await connection.execute(_END, {"session_id": session_id, "user_id": user_id})
    return bool(result.rowcount)


class WebSessionStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, *, user_id: int, secret: str, user_agent: str | None) -> WebSession:
        now = datetime.datetime.now(datetime.UTC)
        row = WebSession(
            user_id=user_id,
            secret_hash=digest(secret),
            user_agent=(user_agent or "")[:200] or None,
            created_at=now,
            last_seen_at=now,
        )
        self._session.add(row)
        self._session.flush()
        return row

    def end_all(self, user_id: int) -> int:
        result = self._session.execute(delete(WebSession).where(WebSession.user_id == user_id))
        return int(result.rowcount)  # type: ignore[attr-defined]
