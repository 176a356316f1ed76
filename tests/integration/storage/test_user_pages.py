"""The lists that grow with the tenants, read on the event loop in one statement each: the
operators' tenant list and an operator's namespace list, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import pytest

from kuberth.storage.database.engine import Database
from kuberth.storage.database.users import (
    NamespaceStore,
    UserRow,
    UserStore,
    anamespace_page,
    aowned_by,
    atenant_page,
)

pytestmark = pytest.mark.anyio


def _fill(database: Database) -> None:
    """Three users: one with three namespaces, one with none, one with its personal one."""
    with database.session() as session:
        users, namespaces = UserStore(session), NamespaceStore(session)
        for github_id, login in [(3, "three"), (1, "one"), (2, "two")]:
            users.upsert(github_id=github_id, login=login, name=login.title())
        users.set_revoked(2, revoked=True)
        for name, owner_id, personal in [
            ("one-b", 1, False),
            ("one", 1, True),
            ("one-a", 1, False),
            ("three", 3, True),
        ]:
            namespaces.record(name=name, owner_id=owner_id, personal=personal)


def _row(database: Database, github_id: int) -> UserRow:
    with database.session() as session:
        user = UserStore(session).get(github_id)
        assert user is not None
        return UserRow(
            user.id,
            user.login,
            user.name,
            user.created_at,
            user.last_sign_in_at,
            user.revoked_at,
            user.revoked_reason,
        )


async def test_a_page_of_tenants_comes_with_their_namespaces_and_the_count(
    database: Database,
) -> None:
    async with database.aread() as connection:
        assert await atenant_page(connection, offset=0, limit=10) == (0, [])
    _fill(database)
    one, two, three = (_row(database, i) for i in (1, 2, 3))
    assert isinstance(one.created_at, datetime.datetime)
    assert two.revoked_reason == "operator"
    async with database.aread() as connection:
        # By id; each user's namespaces personal first, then by name; none is an empty list.
        assert await atenant_page(connection, offset=0, limit=2) == (
            3,
            [(one, ["one", "one-a", "one-b"]), (two, [])],
        )
        assert await atenant_page(connection, offset=2, limit=2) == (3, [(three, ["three"])])
        assert await atenant_page(connection, offset=5, limit=2) == (3, [])  # past the end


async def test_a_page_of_every_namespace_comes_with_the_count(database: Database) -> None:
    _fill(database)
    async with database.aread() as connection:
        total, page = await anamespace_page(connection, offset=1, limit=2)
        assert total == 4
        assert [(n.name, n.owner_id, n.personal) for n in page] == [
            ("one-a", 1, False),
            ("one-b", 1, False),
        ]
        assert await anamespace_page(connection, offset=4, limit=2) == (4, [])
        owned = await aowned_by(connection, 1)
    with database.session() as session:
        expected = [(n.name, n.personal) for n in NamespaceStore(session).owned_by(1)]
    assert (
        [(n.name, n.personal) for n in owned]
        == expected
        == [
            ("one", True),
            ("one-a", False),
            ("one-b", False),
        ]
    )
