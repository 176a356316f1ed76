"""Tables. A user is keyed on the numeric GitHub id; the login is display data."""

from __future__ import annotations

import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime.datetime]):
    """A timestamp that is always timezone-aware UTC when read back; SQLite forgets the zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    login: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    last_sign_in_at: Mapped[datetime.datetime] = mapped_column(
        UTCDateTime(), server_default=func.now()
    )
    #: Set when the user's access was revoked; sign-in, sessions and tokens stop working.
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())
    #: Who revoked it: ``operator`` (only an operator's restore undoes it) or ``signup-rules``
    #: (the user no longer passed the sign-up rules; passing them at a sign-in undoes it).
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    #: When the sign-up rules last let the user in (sign-in or re-check); None: never recorded.
    signup_checked_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())


class TenantNamespace(Base):
    """A namespace Kuberth gave a user; mirrored by the owner label on the namespace itself."""

    __tablename__ = "namespaces"
    __table_args__ = (
        # At most one personal namespace per user, whatever races happen at first sign-in.
        Index(
            "ix_namespaces_one_personal",
            "owner_id",
            unique=True,
            sqlite_where=text("personal"),
            postgresql_where=text("personal"),
        ),
    )

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class ApiToken(Base):
    """A personal API token; only its SHA-256 is stored (the token has 256 bits of entropy)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    expires_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A signed-in browser. The cookie carries a random secret; only its SHA-256 is stored, so
    deleting the row ends the session for every copy of the cookie."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime())


class IngressHost(Base):
    """A host held by one Ingress; the primary key makes claims race-free across replicas."""

    __tablename__ = "ingress_hosts"

    host: Mapped[str] = mapped_column(String(253), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(63), index=True)
    ingress: Mapped[str] = mapped_column(String(253))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime(), server_default=func.now())


class AuditEvent(Base):
    """One change a user made (or tried to make), and how it ended."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime.datetime] = mapped_column(UTCDateTime(), index=True)
    actor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    actor_login: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    namespace: Mapped[str | None] = mapped_column(String(63), index=True)
    name: Mapped[str | None] = mapped_column(String(253))
    result: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(1000))
