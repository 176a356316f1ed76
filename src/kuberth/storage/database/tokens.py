"""Personal API tokens: stored as SHA-256 digests, shown to their owner once."""

from __future__ import annotations

import datetime
import hashlib

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kuberth.storage.database.models import ApiToken, User


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def user_for(self, token: str) -> User | None:
        """The owner of a valid, unexpired token, noting when it was last used."""
        now = datetime.datetime.now(datetime.UTC)
        row = self._session.scalars(
            select(ApiToken).where(ApiToken.token_hash == digest(token))
        ).first()
        if row is None:
            return None
        expires = row.expires_at
        if expires is not None:
            expires = expires if expires.tzinfo else expires.replace(tzinfo=datetime.UTC)
            if expires <= now:
                return None
        self._session.execute(
            update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
        )
        return self._session.get(User, row.user_id)
