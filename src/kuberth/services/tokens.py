"""Personal API tokens: created and shown once, listed, revoked."""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass

from kuberth.exceptions import InvalidInputError, NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.storage.database.engine import AsyncReads, AsyncSessions
from kuberth.storage.database.models import ApiToken
from kuberth.storage.database.tokens import aadd, aowned_by, arevoke

#: Tokens are recognisable (for secret scanners) by this prefix.
TOKEN_PREFIX = "kbt_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    prefix: str
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenInfo:
        return cls(row.id, row.name, row.prefix, row.created_at, row.expires_at, row.last_used_at)


class TokenService:
    """On the event loop: every verb is a request's, and awaits the database."""

    def __init__(
        self, *, asessions: AsyncSessions, areads: AsyncReads, audit: AuditService
    ) -> None:
        self._asessions = asessions
        self._areads = areads
        self._audit = audit

    async def create(
        self, principal: Principal, *, name: str, expires_in_days: int | None
    ) -> tuple[str, TokenInfo]:
        """A new token; the plain value is returned now and never again."""
        if not name.strip():
            raise InvalidInputError("name must not be empty", field="name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = None
        if expires_in_days is not None:
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=expires_in_days)
        async with (
            self._audit.achange(principal, "create", "ApiToken", None, name.strip()),
            self._asessions() as session,
        ):
            row = await aadd(
                session,
                user_id=principal.github_id,
                name=name.strip(),
                token=token,
                expires_at=expires,
            )
            return token, TokenInfo.of(row)

    async def list(self, principal: Principal) -> list[TokenInfo]:
        async with self._areads() as connection:
            rows = await aowned_by(connection, principal.github_id)
        return [TokenInfo(**row._mapping) for row in rows]

    async def revoke(self, principal: Principal, token_id: int) -> None:
        """Raises NotFoundError when the token is not the caller's (or does not exist)."""
        async with (
            self._audit.achange(principal, "revoke", "ApiToken", None, str(token_id)),
            self._asessions() as session,
        ):
            if not await arevoke(session, user_id=principal.github_id, token_id=token_id):
                raise NotFoundError(f"token {token_id} not found")
