"""Personal API tokens: stored as SHA-256 digests, shown to their owner once."""

from __future__ import annotations

import datetime
import hashlib
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.orm import Session

from kuberth.storage.database.engine import principals_changed
from kuberth.storage.database.models import ApiToken, User
from kuberth.storage.database.users import OWNER_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenOwner(NamedTuple):
    """A token and its owner, as one row: all a request's authentication needs."""

    token_id: int
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None
    user_id: int
    login: str
    name: str | None
    revoked_at: datetime.datetime | None
    revoked_reason: str | None
    signup_checked_at: datetime.datetime | None
    #: The user's namespaces, comma-separated (None: none).
    owned_namespaces: str | None


#: One statement (token joined to its user), built once: the columns are plain values, so no ORM
#: objects are made on the path every API request takes.
_OWNER = (
    select(
        ApiToken.id,
        ApiToken.expires_at,
        ApiToken.last_used_at,
        *OWNER_COLUMNS,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def _new_token(
    *, user_id: int, name: str, token: str, expires_at: datetime.datetime | None
) -> ApiToken:
    """The row :meth:`TokenStore.add` and :func:`aadd` insert: the digest, never the token."""
    return ApiToken(
        user_id=user_id,
        name=name,
        token_hash=digest(token),
        prefix=token[:8],
        expires_at=expires_at,
        created_at=datetime.datetime.now(datetime.UTC),
        last_used_at=None,
    )


class TokenStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self, *, user_id: int, name: str, token: str, expires_at: datetime.datetime | None
    ) -> ApiToken:
        row = _new_token(user_id=user_id, name=name, token=token, expires_at=expires_at)
        self._session.add(row)
        self._session.flush()
        return row


async def aadd(
    session: AsyncSession,
    *,
    user_id: int,
    name: str,
    token: str,
    expires_at: datetime.datetime | None,
) -> ApiToken:
    """:meth:`TokenStore.add` on the event loop."""
    row = _new_token(user_id=user_id, name=name, token=token, expires_at=expires_at)
    session.add(row)
    await session.flush()
    return row


#: A user's tokens as their list shows them (never a digest), oldest first: plain columns.
_OWNED_BY = (
    select(
        ApiToken.id,
        ApiToken.name,
        ApiToken.prefix,
        ApiToken.created_at,
        ApiToken.expires_at,
        ApiToken.last_used_at,
    )
    .where(ApiToken.user_id == bindparam("user_id"))
    .order_by(ApiToken.id)
)

_REVOKE = delete(ApiToken).where(
    ApiToken.id == bindparam("token_id"), ApiToken.user_id == bindparam("user_id")
)


async def aowned_by(connection: AsyncConnection, user_id: int) -> list[Row[Any]]:
    """The user's tokens: id, name, prefix, created_at, expires_at, last_used_at."""
    return list(await connection.execute(_OWNED_BY, {"user_id": user_id}))


async def arevoke(session: AsyncSession, *, user_id: int, token_id: int) -> bool:
    """Delete one of the user's tokens; False when there was no such token of theirs."""
    connection = await session.connection()
    result = await connection.execute(_REVOKE, {"token_id": token_id, "user_id": user_id})
    principals_changed(session)
    return bool(result.rowcount)


async def amark_used(session: AsyncSession, token_id: int, at: datetime.datetime) -> None:
    """Record the token's use at ``at`` (``last_used_at``)."""
    await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at))


async def atoken_owner(connection: AsyncConnection, token: str) -> TokenOwner | None:
    """The token (expired or not) and its owner (revoked or not); None if no such token.

    A Core statement: every API request asks this, and needs none of the ORM's result handling.
    """
    row = (await connection.execute(_OWNER, {"token_hash": digest(token)})).first()
    return None if row is None else TokenOwner(*row)
