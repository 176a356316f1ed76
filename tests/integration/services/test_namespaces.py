"""Who may use a namespace, and which namespaces are the caller's, decided on the event loop as
the sync methods do, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from kuberth.exceptions import NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.namespaces import NamespaceService
from kuberth.services.principal import Principal
from kuberth.storage.database.engine import Database
from kuberth.storage.database.models import TenantNamespace
from kuberth.storage.database.users import NamespaceStore, UserStore
from tests.integration.services.twins import same_answer

pytestmark = pytest.mark.anyio

ALICE = Principal(7, "alice", None, is_admin=False)
OPERATOR = Principal(9, "carol", None, is_admin=True)


def fields(row: TenantNamespace) -> tuple[str, int, bool]:
    return row.name, row.owner_id, row.personal


def service_of(database: Database) -> NamespaceService:
    """The service with its database only: these tests ask nothing of Kubernetes."""
    return NamespaceService(
        sessions=database.session,
        asessions=database.asession,
        reads=database.read,
        areads=database.aread,
        namespaces=None,
        quotas=None,
        provisioner=None,
        reserved=(),
        max_per_user=5,
        delete_timeout=1,
        audit=AuditService(sessions=database.session, asessions=database.asession),
    )


async def test_own_namespaces_are_found_and_others_are_not_there(database: Database) -> None:
    with database.session() as session:
        for github_id, login in [(7, "alice"), (8, "bob")]:
            UserStore(session).upsert(github_id=github_id, login=login, name=None)
            NamespaceStore(session).record(name=login, owner_id=github_id, personal=True)
    namespaces = service_of(database)

    async def access(principal: Principal, name: str) -> object:
        async def asynchronous() -> object:
            return await namespaces.arequire_access(principal, name)

        answer = await same_answer(
            lambda: namespaces.require_access(principal, name).owner_id, asynchronous
        )
        return answer.message if isinstance(answer, NotFoundError) else answer

    assert fields(namespaces.require_access(ALICE, "alice")) == ("alice", 7, True)
    assert await access(ALICE, "alice") == 7  # the owner's id
    # Another tenant's namespace is "not found", exactly as one that does not exist.
    assert await access(ALICE, "bob") == "namespace bob not found"
    assert await access(ALICE, "nobody") == "namespace nobody not found"
    assert await access(OPERATOR, "bob") == 8


async def test_the_list_on_the_event_loop_answers_as_the_sync_list(database: Database) -> None:
    with database.session() as session:
        for github_id, login in [(7, "alice"), (8, "bob"), (9, "carol")]:
            UserStore(session).upsert(github_id=github_id, login=login, name=None)
        for name, owner_id, personal in [
            ("alice", 7, True),
            ("alice-b", 7, False),
            ("alice-a", 7, False),
            ("bob", 8, True),
            ("carol", 9, True),
        ]:
            NamespaceStore(session).record(name=name, owner_id=owner_id, personal=personal)
    namespaces = service_of(database)

    async def listed(principal: Principal, **page: int | bool) -> tuple[int, list[str]]:
        async def asynchronous() -> object:
            return await namespaces.alist(principal, **page)

        answer = await same_answer(lambda: namespaces.list(principal, **page), asynchronous)
        assert isinstance(answer, tuple)
        total, items = answer
        return total, [n.name for n in items]

    # A tenant's own, personal first; an operator's: every tenant's by name, or its own.
    assert await listed(ALICE) == (3, ["alice", "alice-a", "alice-b"])
    assert await listed(ALICE, offset=1, limit=1) == (3, ["alice-a"])
    assert await listed(OPERATOR) == (5, ["alice", "alice-a", "alice-b", "bob", "carol"])
    assert await listed(OPERATOR, offset=3, limit=1) == (5, ["bob"])
    assert await listed(OPERATOR, offset=9) == (5, [])
    assert await listed(OPERATOR, own=True) == (1, ["carol"])
    # The dashboard's list: the caller's own.
    assert [n.name for n in await namespaces.owned(OPERATOR)] == ["carol"]
    assert await namespaces.owned(ALICE) == (await namespaces.alist(ALICE))[1]


async def test_a_principal_that_came_with_its_namespaces_needs_no_query() -> None:
    """Authentication reads the caller's namespaces with the token: the check asks nothing more
    (here any query would fail) in one of them; any other name is looked up (the principal may
    be a cached verdict older than a namespace made on another replica)."""

    def no_database() -> object:
        raise AssertionError("the database was asked")

    namespaces = NamespaceService(
        sessions=None,
        reads=None,
        asessions=None,
        areads=no_database,
        namespaces=None,
        quotas=None,
        provisioner=None,
        reserved=(),
        max_per_user=5,
        delete_timeout=1,
        audit=None,
    )
    alice = Principal(7, "alice", None, is_admin=False, namespaces=frozenset({"alice", "a2"}))
    assert await namespaces.arequire_access(alice, "a2") == 7
    with pytest.raises(AssertionError, match="the database was asked"):
        await namespaces.arequire_access(alice, "bob")
    operator = Principal(9, "carol", None, is_admin=True, namespaces=frozenset({"carol"}))
    assert await namespaces.arequire_access(operator, "carol") == 9
    with pytest.raises(AssertionError, match="the database was asked"):
        await namespaces.arequire_access(operator, "bob")
