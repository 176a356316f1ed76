"""Changes recorded with their outcome on the event loop, and the log read, on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from kuberth.exceptions import ConflictError, DatabaseUnavailableError
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.storage.database.engine import Database, make_engine
from kuberth.storage.database.models import AuditEvent
from kuberth.storage.database.users import NamespaceStore, UserStore

pytestmark = pytest.mark.anyio

ALICE = Principal(7, "alice", None, is_admin=False)
OPERATOR = Principal(9, "carol", None, is_admin=True)

#: What each change does, the error that goes on out of it, and the result it is recorded with.
OUTCOMES: list[tuple[Callable[[], None], type[Exception] | None, str, str | None]] = [
    (lambda: None, None, "ok", "why"),
    (lambda: (_ for _ in ()).throw(ConflictError("taken")), ConflictError, "conflict", "taken"),
    (lambda: (_ for _ in ()).throw(ValueError("a bug")), ValueError, "internal_error", None),
]


def recorded(database: Database, name: str) -> list[tuple[object, ...]]:
    with database.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.name == name))
        return [
            (r.actor_id, r.actor_login, r.action, r.kind, r.namespace, r.result, r.detail)
            for r in rows
        ]


async def test_a_change_is_recorded_with_its_outcome(database: Database) -> None:
    audit = AuditService(sessions=database.session, writes=database.abegin, areads=database.aread)
    for number, (body, error, result, detail) in enumerate(OUTCOMES):
        name = f"change-{number}"
        raised: type[Exception] | None = None
        try:
            async with audit.achange(ALICE, "create", "Deployment", "alice", name, detail="why"):
                body()
        except Exception as failure:  # the change's own error goes on, unchanged
            raised = type(failure)
        assert raised is error, name
        assert recorded(database, name) == [
            (7, "alice", "create", "Deployment", "alice", result, detail)
        ]


async def test_an_unrecorded_success_fails_and_an_unrecorded_failure_keeps_its_error() -> None:
    unreachable = Database(make_engine("sqlite:///file:/nonexistent-kuberth/k.db?mode=ro&uri=true"))
    audit = AuditService(
        sessions=unreachable.session, writes=unreachable.abegin, areads=unreachable.aread
    )
    try:
        with pytest.raises(DatabaseUnavailableError):
            async with audit.achange(ALICE, "delete", "Deployment", "alice", "web"):
                pass
        with pytest.raises(ConflictError, match="taken"):
            async with audit.achange(ALICE, "delete", "Deployment", "alice", "web"):
                raise ConflictError("taken")
    finally:
        await unreachable.adispose()


async def test_the_log_shows_the_callers_namespaces_and_own_changes_newest_first(
    database: Database,
) -> None:
    with database.session() as session:
        for github_id, login in [(7, "alice"), (8, "bob")]:
            UserStore(session).upsert(github_id=github_id, login=login, name=None)
        for name, owner in [("alice", 7), ("alice-2", 7), ("bob", 8)]:
            NamespaceStore(session).record(name=name, owner_id=owner, personal="-" not in name)
    audit = AuditService(sessions=database.session, writes=database.abegin, areads=database.aread)
    bob = Principal(8, "bob", None, is_admin=False)
    for principal, kind, namespace, name in [
        (ALICE, "Deployment", "alice", "web"),
        (ALICE, "Deployment", "alice-2", "api"),
        (bob, "Deployment", "bob", "db"),
        (ALICE, "ApiToken", None, "ci"),
        (bob, "ApiToken", None, "bobs"),
    ]:
        async with audit.achange(principal, "create", kind, namespace, name):
            pass

    async def names(principal: Principal, **asked: Any) -> list[str | None]:
        return [entry.name for entry in await audit.list(principal, **asked)]

    # Her namespaces are read, or come with the principal (as authentication gives it): alike.
    carried = Principal(
        7, "alice", None, is_admin=False, namespaces=frozenset({"alice", "alice-2"})
    )
    for alice in (ALICE, carried):
        assert await names(alice) == ["ci", "api", "web"]
        assert await names(alice, namespace="alice") == ["web"]
        assert await names(alice, namespace="bob") == []  # not hers: as if it did not exist
        assert await names(alice, limit=2) == ["ci", "api"]
    assert await names(OPERATOR) == ["bobs", "ci", "db", "api", "web"]
    assert await names(OPERATOR, namespace="bob") == ["db"]
    [entry] = await audit.list(ALICE, namespace="alice")
    assert isinstance(entry.at, datetime.datetime)
    assert (entry.actor_id, entry.actor_login, entry.action, entry.kind) == (
        7,
        "alice",
        "create",
        "Deployment",
    )
    assert (entry.namespace, entry.result, entry.detail) == ("alice", "ok", None)
