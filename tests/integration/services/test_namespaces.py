"""Who may use a namespace, and which namespaces are the caller's, decided on the event loop as
the sync methods do, on SQLite and PostgreSQL; a namespace made on the event loop, whole or not at
all, against the real API server."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest
from kubernetes import client

from kuberth.exceptions import ConflictError, ForbiddenError, KuberthError, NotFoundError
from kuberth.http.services import Services
from kuberth.services.audit import AuditService
from kuberth.services.builders.tenant import BASELINE_NAME
from kuberth.services.namespaces import NamespaceService
from kuberth.services.principal import Principal
from kuberth.storage.database.engine import Database, make_engine, migrate
from kuberth.storage.database.models import TenantNamespace
from kuberth.storage.database.users import NamespaceStore, UserStore, afind_namespace
from kuberth.storage.github import GitHubUser
from tests.integration.postgres import PostgresServer
from tests.integration.services.twins import same_answer
from tests.integration.slowing import DELAY, SlowProxy, ticks_while

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
        audit=AuditService(
            sessions=database.session, writes=database.abegin, areads=database.aread
        ),
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


def _operator(services: Services, github_id: int) -> Principal:
    """An operator with a user row (a namespace's row refers to its owner's)."""
    login = f"o{secrets.token_hex(3)}"
    with services.database.session() as session:
        UserStore(session).upsert(github_id=github_id, login=login, name=None)
    return Principal(github_id, login, None, is_admin=True)


async def test_a_namespace_is_made_whole_its_row_and_audit_record_with_it(
    build: Callable[..., Services], admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    services = build()
    principal, personal = await services.users.asign_in(
        GitHubUser(new_id(), f"c{secrets.token_hex(3)}", None)
    )
    name = f"{personal}-x"

    made = await services.namespaces.acreate(principal, name)

    assert (made.name, made.personal, made.owner_id) == (name, False, principal.github_id)
    assert made.quota["pods"]["hard"] == "50"  # from the writes' own answers
    rbac = client.RbacAuthorizationV1Api(admin_api)
    assert rbac.read_namespaced_role_binding(BASELINE_NAME, name)  # the baseline, access last
    assert [n.name for n in (await services.namespaces.alist(principal))[1]] == [personal, name]
    logged = await services.audit.list(principal, namespace=name)
    assert [(e.action, e.kind, e.name, e.result) for e in logged] == [
        ("create", "Namespace", name, "ok")
    ]
    with pytest.raises(ConflictError, match="already exists"):
        await services.namespaces.acreate(principal, name)
    with pytest.raises(ForbiddenError, match="must be named"):
        await services.namespaces.acreate(principal, f"x{name}")


async def test_a_namespace_whose_baseline_is_refused_is_not_left_behind(
    build: Callable[..., Services], admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    """Kubernetes refuses the quota (not a quantity) after the namespace was made: the namespace
    is deleted again, no row is recorded, and the audit log has the failure."""
    services = build(tenant_quota={"pods": "lots"})
    operator = _operator(services, new_id())
    name = f"kt-half-{secrets.token_hex(3)}"

    with pytest.raises(KuberthError) as refused:
        await services.namespaces.acreate(operator, name)

    left = [  # gone, or still being deleted
        ns.metadata.deletion_timestamp
        for ns in client.CoreV1Api(admin_api).list_namespace().items
        if ns.metadata.name == name
    ]
    assert len(left) <= 1
    assert all(left), left  # one still there has its deletion under way
    async with services.database.aread() as connection:
        assert await afind_namespace(connection, name) is None
    logged = await services.audit.list(operator, namespace=name)
    assert [(e.action, e.result) for e in logged] == [("create", refused.value.error)]


async def test_a_create_leaves_the_event_loop_free_while_kubernetes_answers(
    slow_services: Services, new_id: Callable[[], int]
) -> None:
    """Five writes, each answered DELAY late: the loop's other work runs meanwhile."""
    operator = _operator(slow_services, new_id())
    name = f"kt-slow-{secrets.token_hex(3)}"
    started = time.monotonic()

    made, ticks = await ticks_while(slow_services.namespaces.acreate(operator, name))

    took = time.monotonic() - started
    assert made.name == name
    assert took >= 5 * DELAY  # the namespace and four baseline objects
    assert ticks >= 20, (ticks, took)  # ~100 on an idle machine; none had it held the loop


async def test_a_form_checks_access_with_the_event_loop_free_while_the_database_answers(
    postgres: PostgresServer,
) -> None:
    """The new-app and new-object forms' check (``arequire_access``) on a PostgreSQL that
    answers DELAY late."""
    url = postgres.create_database(f"kt_{secrets.token_hex(6)}")
    direct = Database(make_engine(url))
    migrate(direct.engine)
    with direct.session() as session:
        UserStore(session).upsert(github_id=7, login="alice", name=None)
        NamespaceStore(session).record(name="alice", owner_id=7, personal=True)
    direct.engine.dispose()
    with SlowProxy(postgres.port, delay=DELAY) as proxy:
        slow = Database(make_engine(url.replace(f":{postgres.port}/", f":{proxy.port}/")))
        try:
            owner, ticks = await ticks_while(service_of(slow).arequire_access(ALICE, "alice"))
        finally:
            await slow.adispose()
    assert owner == 7
    assert ticks >= 2 * DELAY / 0.01 / 4, ticks  # connecting and asking take round trips
