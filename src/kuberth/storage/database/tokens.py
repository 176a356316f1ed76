"""Personal API tokens: stored as SHA-256 digests, shown to their owner once."""

from __future__ import annotations

import datetime
import hashlib
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, Update, bindparam, delete, select, update
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


class TokenStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self, *, user_id: int, name: str, token: str, expires_at: datetime.datetime | None
    ) -> ApiToken:
        row = ApiToken(
            user_id=user_id,
            name=name,
            token_hash=digest(token),
            prefix=token[:8],
            expires_at=expires_at,
            created_at=datetime.datetime.now(datetime.UTC),
        )
        self._session.add(row)
        self._session.flush()
        return row

    def owned_by(self, user_id: int) -> list[ApiToken]:
        statement = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
        return list(self._session.scalars(statement))

    def revoke(self, *, user_id: int, token_id: int) -> bool:
        """Delete one of the user's tokens; False when there was no such token of theirs."""
        result = self._session.execute(
            delete(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == user_id)
        )
        principals_changed(self._session)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_used(self, token_id: int, at: datetime.datetime) -> None:
        self._session.execute(_mark_used(token_id, at))


def _mark_used(token_id: int, at: datetime.datetime) -> Update:
    return update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at)


async def amark_used(session: AsyncSession, token_id: int, at: datetime.datetime) -> None:
    """:meth:`TokenStore.mark_used` on the event loop."""
    await session.execute(_mark_used(token_id, at))


def token_owner(connection: Connection, token: str) -> TokenOwner | None:
    """The token (expired or not) and its owner (revoked or not); None if no such token.

    A Core statement: every API request asks this, and needs none of the ORM's result handling.
    """
    row = connection.execute(_OWNER, {"token_hash": digest(token)}).first()
    return None if row is None else TokenOwner(*row)


async def atoken_owner(connection: AsyncConnection, token: str) -> TokenOwner | None:
    """:func:`token_owner` on the event loop."""
    row = (await connection.execute(_OWNER, {"token_hash": digest(token)})).first()
    return None if row is None else TokenOwner(*row)
