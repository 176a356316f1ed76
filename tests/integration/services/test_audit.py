"""Changes recorded with their outcome on the event loop, as the sync recorder does, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from kuberth.exceptions import ConflictError, DatabaseUnavailableError
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.storage.database.engine import Database, make_engine
from kuberth.storage.database.models import AuditEvent

pytestmark = pytest.mark.anyio

ALICE = Principal(7, "alice", None, is_admin=False)

#: What each change raises, and the result it is recorded with.
OUTCOMES: list[tuple[Callable[[], None], str, str | None]] = [
    (lambda: None, "ok", "why"),
    (lambda: (_ for _ in ()).throw(ConflictError("taken")), "conflict", "taken"),
    (lambda: (_ for _ in ()).throw(ValueError("a bug")), "internal_error", None),
]


def recorded(database: Database, name: str) -> list[tuple[object, ...]]:
    with database.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.name == name))
        return [
            (r.actor_id, r.actor_login, r.action, r.kind, r.namespace, r.result, r.detail)
            for r in rows
        ]


async def test_a_change_is_recorded_with_its_outcome_as_the_sync_recorder_does(
    database: Database,
) -> None:
    audit = AuditService(sessions=database.session, asessions=database.asession)
    for number, (body, result, detail) in enumerate(OUTCOMES):
        raised: list[type[BaseException] | None] = []
        for twin in ("sync", "async"):
            name = f"{twin}-{number}"
            try:
                if twin == "sync":
                    with audit.change(ALICE, "create", "Deployment", "alice", name, detail="why"):
                        body()
                else:
                    async with audit.achange(
                        ALICE, "create", "Deployment", "alice", name, detail="why"
                    ):
                        body()
                raised.append(None)
            except Exception as error:  # the change's own error goes on, unchanged
                raised.append(type(error))
            assert recorded(database, name) == [
                (7, "alice", "create", "Deployment", "alice", result, detail)
            ]
        assert raised[0] == raised[1]


async def test_an_unrecorded_success_fails_and_an_unrecorded_failure_keeps_its_error() -> None:
    unreachable = Database(make_engine("sqlite:///file:/nonexistent-kuberth/k.db?mode=ro&uri=true"))
    audit = AuditService(sessions=unreachable.session, asessions=unreachable.asession)
    try:
        with pytest.raises(DatabaseUnavailableError):
            async with audit.achange(ALICE, "delete", "Deployment", "alice", "web"):
                pass
        with pytest.raises(ConflictError, match="taken"):
            async with audit.achange(ALICE, "delete", "Deployment", "alice", "web"):
                raise ConflictError("taken")
    finally:
        await unreachable.adispose()
