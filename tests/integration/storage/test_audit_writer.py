"""The audit log's group commit, on SQLite and PostgreSQL: events handed in together share a
transaction, each caller still waits for its own, and none is lost or lost with another's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select

from kuberth.exceptions import DatabaseUnavailableError
from kuberth.storage.database.audit import AuditWriter, audit_event
from kuberth.storage.database.engine import Database, make_engine
from kuberth.storage.database.models import AuditEvent

pytestmark = pytest.mark.anyio


def change(name: str, *, actor_id: int = 7) -> dict[str, Any]:
    return audit_event(
        actor_id=actor_id,
        actor_login="alice",
        action="create",
        kind="Deployment",
        namespace="alice",
        name=name,
        result="ok",
    )


def names(database: Database) -> list[str | None]:
    with database.session() as session:
        return list(session.scalars(select(AuditEvent.name).order_by(AuditEvent.id)))


def count_commits(database: Database) -> list[int]:
    """How many transactions the async engine commits from now on (a list, to read later)."""
    commits = [0]

    def committed(_: Any) -> None:
        commits[0] += 1

    event.listen(database.async_engine.sync_engine, "commit", committed)
    return commits


async def test_events_handed_in_together_are_committed_together(database: Database) -> None:
    writer = AuditWriter(database.abegin)
    await writer.record(change("first"))  # a lone event is written at once
    assert names(database) == ["first"]
    commits = count_commits(database)

    await asyncio.gather(*(writer.record(change(f"web-{n}")) for n in range(20)))

    # Every caller's event is stored once, in the order they were handed in, and in far fewer
    # transactions than events (all of them arrived while the first was being committed).
    assert names(database) == ["first", *(f"web-{n}" for n in range(20))]
    assert 1 <= commits[0] <= 3


async def test_a_caller_that_stops_waiting_does_not_take_its_event_along(
    database: Database,
) -> None:
    writer = AuditWriter(database.abegin)
    waiting = asyncio.ensure_future(writer.record(change("abandoned")))
    await asyncio.sleep(0)  # handed in, being written
    waiting.cancel()
    await writer.aclose()

    assert names(database) == ["abandoned"]


async def test_an_event_that_cannot_be_stored_fails_alone(database: Database) -> None:
    writer = AuditWriter(database.abegin)
    too_big = 2**64  # no database's BIGINT holds it
    outcomes = await asyncio.gather(
        writer.record(change("before")),
        writer.record(change("bad", actor_id=too_big)),
        writer.record(change("after")),
        return_exceptions=True,
    )

    assert outcomes[0] is None
    assert isinstance(outcomes[1], Exception)
    assert outcomes[2] is None
    assert names(database) == ["before", "after"]
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2


@pytest.mark.usefixtures("aiosqlite_threads_ended")
async def test_an_unreachable_database_fails_every_caller_with_a_503() -> None:
    unreachable = Database(make_engine("sqlite:///file:/nonexistent-kuberth/k.db?mode=ro&uri=true"))
    writer = AuditWriter(unreachable.abegin)
    try:
        outcomes = await asyncio.gather(
            *(writer.record(change(f"web-{n}")) for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(outcome, DatabaseUnavailableError) for outcome in outcomes)
        # Nothing is left waiting or running.
        await asyncio.wait_for(writer.aclose(), timeout=5)
    finally:
        await unreachable.adispose()
