"""Users and their namespaces in the database."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kuberth.storage.database.engine import principals_changed
from kuberth.storage.database.models import TenantNamespace, User

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_NAMESPACE = select(*TenantNamespace.__table__.columns).where(
    TenantNamespace.name == bindparam("name")
)


def find_namespace(connection: Connection, name: str) -> TenantNamespace | None:
    """The namespace's row as a detached object, for reading only; None if Kuberth has none.

    A Core statement: every request in a namespace asks this, and needs no ORM session.
    """
    row = connection.execute(_NAMESPACE, {"name": name}).first()
    return None if row is None else TenantNamespace(**row._mapping)


async def afind_namespace(connection: AsyncConnection, name: str) -> TenantNamespace | None:
    """:func:`find_namespace` on the event loop."""
    row = (await connection.execute(_NAMESPACE, {"name": name})).first()
    return None if row is None else TenantNamespace(**row._mapping)


#: A user's namespaces, personal first: :meth:`NamespaceStore.owned_by`, :func:`aowned_by`.
_OWNED_BY = (
    select(*TenantNamespace.__table__.columns)
    .where(TenantNamespace.owner_id == bindparam("owner_id"))
    .order_by(TenantNamespace.personal.desc(), TenantNamespace.name)
)
#: A page of every tenant namespace, by name: :meth:`NamespaceStore.page`.
_PAGE = (
    select(*TenantNamespace.__table__.columns)
    .order_by(TenantNamespace.name)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_COUNT = select(func.count()).select_from(TenantNamespace)


async def aowned_by(connection: AsyncConnection, owner_id: int) -> list[TenantNamespace]:
    """:meth:`NamespaceStore.owned_by` on the event loop."""
    rows = await connection.execute(_OWNED_BY, {"owner_id": owner_id})
    return [TenantNamespace(**row._mapping) for row in rows]


#: Forgetting a namespace (gone from Kubernetes): :meth:`NamespaceStore.forget`, :func:`aforget`.
_FORGET = delete(TenantNamespace).where(TenantNamespace.name == bindparam("name"))


async def aforget(session: AsyncSession, name: str) -> None:
    """:meth:`NamespaceStore.forget` on the event loop."""
    connection = await session.connection()
    await connection.execute(_FORGET, {"name": name})
    principals_changed(session)


async def anamespace_page(
    connection: AsyncConnection, *, offset: int, limit: int
) -> tuple[int, list[TenantNamespace]]:
    """How many tenant namespaces there are, and a page of them by name (an operator's list).

    One statement: the count rides along on each row; only a page past the end asks again.
    """
    total = select(func.count()).select_from(TenantNamespace).scalar_subquery().label("total")
    statement = (
        select(*TenantNamespace.__table__.columns, total)
        .order_by(TenantNamespace.name)
        .offset(offset)
        .limit(limit)
    )
    rows = (await connection.execute(statement)).all()
    if not rows:
        return await _acount(connection, TenantNamespace), []
    return rows[0].total, [
        TenantNamespace(**{k: v for k, v in row._mapping.items() if k != "total"}) for row in rows
    ]


async def atenant_page(
    connection: AsyncConnection, *, offset: int, limit: int
) -> tuple[int, list[tuple[UserRow, list[str]]]]:
    """How many users there are, and a page of them by id, each with the names of its
    namespaces in the order of :meth:`NamespaceStore.owned_by`: the operators' list.

    One statement (the page joined to its namespaces, the count riding along), where it took
    three; only a page past the end asks again for the count.
    """
    rows = (await connection.execute(_TENANT_PAGE, {"offset": offset, "limit": limit})).all()
    if not rows:
        return await _acount(connection, User), []
    width = len(_USER_ROW)
    users: list[tuple[UserRow, list[str]]] = []
    last = None
    for row in rows:
        if row[0] != last:
            last = row[0]
            names: list[str] = []
            users.append((UserRow._make(row[:width]), names))
        if row[width] is not None:
            names.append(row[width])
    return rows[0][width + 1], users


async def _acount(connection: AsyncConnection, model: type[User] | type[TenantNamespace]) -> int:
    return (await connection.scalar(select(func.count()).select_from(model))) or 0


def insert_for(session: Session | AsyncSession) -> Callable[..., Any]:
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


#: What a request's owner lookup (an API token or a session, joined to its user) reads of the
#: user, in the order the owner rows (TokenOwner, SessionOwner) list those fields; last, the
#: names of the namespaces the user owns, comma-separated (DNS labels have no commas), read in
#: the same statement so a request in one of them needs no second query to check ownership.
OWNER_COLUMNS = (
    User.id,
    User.login,
    User.name,
    User.revoked_at,
    User.revoked_reason,
    User.signup_checked_at,
    select(func.aggregate_strings(TenantNamespace.name, ","))
    .where(TenantNamespace.owner_id == User.id)
    .scalar_subquery()
    .label("owned_namespaces"),
)


#: What the operators' list shows of a user, in the order of :class:`UserRow`.
_USER_ROW = (
    User.id,
    User.login,
    User.name,
    User.created_at,
    User.last_sign_in_at,
    User.revoked_at,
    User.revoked_reason,
)


#: :func:`atenant_page`'s statement, built once. The page is chosen on the primary key alone
#: (the rows an OFFSET skips are index entries, not whole users), then joined to its users and
#: their namespaces; the count of users rides along on every row.
_PAGE_IDS = (
    select(User.id)
    .order_by(User.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
    .subquery("page")
)
_TENANT_PAGE = (
    select(
        *_USER_ROW,
        TenantNamespace.name.label("namespace"),
        select(func.count()).select_from(User).correlate(None).scalar_subquery().label("total"),
    )
    .select_from(_PAGE_IDS)
    .join(User, User.id == _PAGE_IDS.c.id)
    .outerjoin(TenantNamespace, TenantNamespace.owner_id == User.id)
    .order_by(User.id, TenantNamespace.personal.desc(), TenantNamespace.name)
)


class UserRow(NamedTuple):
    """A user as the operators' list shows it."""

    id: int
    login: str
    name: str | None
    created_at: datetime.datetime
    last_sign_in_at: datetime.datetime
    revoked_at: datetime.datetime | None
    revoked_reason: str | None


#: Who revoked a user (``users.revoked_reason``): an operator, or the sign-up rules.
BY_OPERATOR = "operator"
BY_SIGNUP_RULES = "signup-rules"


class Reviewable(NamedTuple):
    """An active user, as the sign-up rules' re-check needs it."""

    id: int
    login: str
    signup_checked_at: datetime.datetime | None


class UserStore:
    """Upserts keyed on the GitHub id, so concurrent first sign-ins make one row."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(self, *, github_id: int, login: str, name: str | None) -> User:
        """Create the user, or refresh its login and name; either way record this sign-in."""
        now = datetime.datetime.now(datetime.UTC)
        insert = insert_for(self._session)
        statement = (
            insert(User)
            .values(
                id=github_id,
                login=login,
                name=name,
                created_at=now,
                last_sign_in_at=now,
                signup_checked_at=now,  # a sign-in is a check of the rules
            )
            .on_conflict_do_update(
                index_elements=[User.id],
                set_={
                    "login": login,
                    "name": name,
                    "last_sign_in_at": now,
                    "signup_checked_at": now,
                },
            )
        )
        self._session.execute(statement)
        user = self._session.get(User, github_id, populate_existing=True)
        assert user is not None
        return user

    def get(self, github_id: int) -> User | None:
        return self._session.get(User, github_id)

    def revoked_ids(self) -> set[int]:
        """Users an operator revoked (a handful, whatever the number of users)."""
        return set(self._session.scalars(select(User.id).where(User.revoked_at.is_not(None))))

    def set_revoked(self, github_id: int, *, revoked: bool, reason: str = BY_OPERATOR) -> bool:
        """Mark (or unmark) the user as revoked, and by whom; False when there is no such user."""
        user = self._session.get(User, github_id)
        if user is None:
            return False
        user.revoked_at = datetime.datetime.now(datetime.UTC) if revoked else None
        user.revoked_reason = reason if revoked else None
        principals_changed(self._session)
        return True

    def revoke_if_active(self, github_id: int, *, reason: str) -> bool:
        """Revoke a user nobody revoked yet (one statement: an operator's revoke in between keeps
        its reason); True when this call did it."""
        result = self._session.execute(
            update(User)
            .where(User.id == github_id, User.revoked_at.is_(None))
            .values(revoked_at=datetime.datetime.now(datetime.UTC), revoked_reason=reason)
        )
        principals_changed(self._session)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def reviewable(self) -> list[Reviewable]:
        """Users not revoked, with when the sign-up rules last let them in."""
        statement = (
            select(User.id, User.login, User.signup_checked_at)
            .where(User.revoked_at.is_(None))
            .order_by(User.id)
        )
        return [Reviewable(*row) for row in self._session.execute(statement)]

    def claim_signup_check(
        self, github_id: int, *, now: datetime.datetime, stale_before: datetime.datetime
    ) -> bool:
        """Take the turn to re-check a user whose verdict is older than ``stale_before``: one
        conditional update, so of several requests (or replicas) only one asks GitHub."""
        result = self._session.execute(
            update(User)
            .where(
                User.id == github_id,
                or_(User.signup_checked_at.is_(None), User.signup_checked_at < stale_before),
            )
            .values(signup_checked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_signup_checked(self, github_id: int, at: datetime.datetime) -> None:
        self._session.execute(update(User).where(User.id == github_id).values(signup_checked_at=at))


class NamespaceStore:
    """Which user owns which namespace."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def personal(self, owner_id: int) -> TenantNamespace | None:
        statement = select(TenantNamespace).where(
            TenantNamespace.owner_id == owner_id, TenantNamespace.personal.is_(True)
        )
        return self._session.scalars(statement).first()

    def get(self, name: str) -> TenantNamespace | None:
        return self._session.get(TenantNamespace, name)

    def owned_by(self, owner_id: int) -> list[TenantNamespace]:
        """The user's namespaces, personal first, as detached rows (for reading only)."""
        rows = self._session.execute(_OWNED_BY, {"owner_id": owner_id})
        return [TenantNamespace(**row._mapping) for row in rows]

    def all(self) -> list[TenantNamespace]:
        return list(self._session.scalars(select(TenantNamespace).order_by(TenantNamespace.name)))

    def page(self, *, offset: int, limit: int) -> list[TenantNamespace]:
        """Every tenant namespace, by name, a page at a time, as detached rows."""
        rows = self._session.execute(_PAGE, {"offset": offset, "limit": limit})
        return [TenantNamespace(**row._mapping) for row in rows]

    def count(self) -> int:
        return self._session.scalar(_COUNT) or 0

    def existing(self, names: list[str]) -> set[str]:
        """Which of these names are Kuberth namespaces."""
        if not names:
            return set()
        statement = select(TenantNamespace.name).where(TenantNamespace.name.in_(names))
        return set(self._session.scalars(statement))

    def count_owned_by(self, owner_id: int) -> int:
        statement = select(func.count()).where(TenantNamespace.owner_id == owner_id)
        return self._session.scalar(statement) or 0

    def record(self, *, name: str, owner_id: int, personal: bool) -> None:
        """Record ownership; a row that already says the same is left as it is."""
        insert = insert_for(self._session)
        self._session.execute(
            insert(TenantNamespace)
            .values(name=name, owner_id=owner_id, personal=personal)
            .on_conflict_do_nothing()
        )
        principals_changed(self._session)

    def forget(self, name: str) -> None:
        self._session.connection().execute(_FORGET, {"name": name})
        principals_changed(self._session)
