"""Personal API tokens created, listed and revoked on the event loop, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import select

from kuberth.exceptions import InvalidInputError, NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.services.tokens import TokenService
from kuberth.storage.database.engine import Database
from kuberth.storage.database.models import AuditEvent
from kuberth.storage.database.tokens import atoken_owner
from kuberth.storage.database.users import UserStore

pytestmark = pytest.mark.anyio

ALICE = Principal(7, "alice", None, is_admin=False)
BOB = Principal(8, "bob", None, is_admin=False)


def tokens_of(database: Database) -> TokenService:
    with database.session() as session:
        for user in (ALICE, BOB):
            UserStore(session).upsert(github_id=user.github_id, login=user.login, name=None)
    return TokenService(
        asessions=database.asession,
        areads=database.aread,
        audit=AuditService(
            sessions=database.session, writes=database.abegin, areads=database.aread
        ),
    )


async def test_a_token_is_shown_once_and_listed_by_its_owner_only(database: Database) -> None:
    tokens = tokens_of(database)
    before = datetime.datetime.now(datetime.UTC)
    value, info = await tokens.create(ALICE, name=" ci ", expires_in_days=30)
    assert value.startswith("kbt_")
    assert (info.name, info.prefix, info.last_used_at) == ("ci", value[:8], None)
    assert info.expires_at is not None
    assert datetime.timedelta(days=30) <= info.expires_at - before < datetime.timedelta(days=31)
    await tokens.create(BOB, name="bob's", expires_in_days=None)

    assert await tokens.list(ALICE) == [info]
    assert [(t.name, t.expires_at) for t in await tokens.list(BOB)] == [("bob's", None)]
    async with database.aread() as connection:  # the value authenticates: its digest was stored
        owner = await atoken_owner(connection, value)
    assert owner is not None
    assert (owner.token_id, owner.user_id) == (info.id, 7)

    with pytest.raises(InvalidInputError, match="name must not be empty"):
        await tokens.create(ALICE, name="  ", expires_in_days=None)


async def test_a_token_is_revoked_by_its_owner_only_and_each_try_recorded(
    database: Database,
) -> None:
    tokens = tokens_of(database)
    _, mine = await tokens.create(ALICE, name="ci", expires_in_days=None)
    _, bobs = await tokens.create(BOB, name="bob's", expires_in_days=None)

    # Another user's token is "not found", exactly as one that does not exist.
    with pytest.raises(NotFoundError, match=f"token {bobs.id} not found"):
        await tokens.revoke(ALICE, bobs.id)
    await tokens.revoke(ALICE, mine.id)
    with pytest.raises(NotFoundError, match=f"token {mine.id} not found"):
        await tokens.revoke(ALICE, mine.id)  # already gone

    assert await tokens.list(ALICE) == []
    assert await tokens.list(BOB) == [bobs]
    with database.session() as session:
        recorded = session.execute(
            select(AuditEvent.action, AuditEvent.name, AuditEvent.result)
            .where(AuditEvent.actor_id == 7, AuditEvent.kind == "ApiToken")
            .order_by(AuditEvent.id)
        ).all()
    assert [tuple(row) for row in recorded] == [
        ("create", "ci", "ok"),
        ("revoke", str(bobs.id), "not_found"),
        ("revoke", str(mine.id), "ok"),
        ("revoke", str(mine.id), "not_found"),
    ]
