"""Personal API tokens: created and shown once, listed, revoked."""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kuberth.exceptions import InvalidInputError, NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.storage.database.models import ApiToken
from kuberth.storage.database.tokens import TokenStore

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
    def __init__(
        self, *, sessions: Callable[[], AbstractContextManager[Session]], audit: AuditService
    ) -> None:
        self._sessions = sessions
        self._audit = audit

    def create(
        self, principal: Principal, *, name: str, expires_in_days: int | None
    ) -> tuple[str, TokenInfo]:
        """A new token; the plain value is returned now and never again."""
        if not name.strip():
            raise InvalidInputError("name must not be empty", field="name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = None
        if expires_in_days is not None:
            expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=expires_in_days)
        with (
            self._audit.change(principal, "create", "ApiToken", None, name.strip()),
            self._sessions() as session,
        ):
            row = TokenStore(session).add(
                user_id=principal.github_id, name=name.strip(), token=token, expires_at=expires
            )
            return token, TokenInfo.of(row)

    def list(self, principal: Principal) -> list[TokenInfo]:
        with self._sessions() as session:
            return [TokenInfo.of(row) for row in TokenStore(session).owned_by(principal.github_id)]

    def revoke(self, principal: Principal, token_id: int) -> None:
        """Raises NotFoundError when the token is not the caller's (or does not exist)."""
        with (
            self._audit.change(principal, "revoke", "ApiToken", None, str(token_id)),
            self._sessions() as session,
        ):
            if not TokenStore(session).revoke(user_id=principal.github_id, token_id=token_id):
                raise NotFoundError(f"token {token_id} not found")
