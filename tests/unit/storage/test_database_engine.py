"""The start-up shortcut past Alembic, and sessions without a transaction, on SQLite."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, make_url, text

from kuberth.services.audit import AuditService
from kuberth.services.users import UserService
from kuberth.storage.database.engine import (
    MIGRATIONS,
    Database,
    _head_revisions,
    async_url,
    make_engine,
)
from kuberth.storage.database.engine import migrate as migrate_to_head
from kuberth.storage.database.models import ApiToken
from kuberth.storage.database.tokens import TokenStore
from kuberth.storage.database.users import UserStore


def test_the_heads_read_without_alembic_are_alembics() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert _head_revisions() == set(ScriptDirectory.from_config(config).get_heads())


def test_a_database_at_head_is_left_alone_and_an_older_one_is_upgraded(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    migrate_to_head(engine)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    migrate_to_head(engine)  # at head: nothing to do
    event.remove(engine, "before_cursor_execute", record)
    # Recognised with one query, without Alembic (which would read the schema and write).
    assert [s.split()[0].upper() for s in statements] == ["SELECT"], statements
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM audit_events")) == 0  # from 0002
        assert connection.scalar(text("SELECT count(*) FROM web_sessions")) == 0  # from 0003
        head = connection.scalar(text("SELECT version_num FROM alembic_version"))
        assert {head} == _head_revisions()


def test_token_use_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    database = Database(make_engine(f"sqlite:///{tmp_path / 'k.db'}"))
    migrate_to_head(database.engine)
    with database.session() as session:
        UserStore(session).upsert(github_id=7, login="seven", name=None)
        token_id = (
            TokenStore(session).add(user_id=7, name="t", token="kbt_seven", expires_at=None).id
        )
    users = UserService(
        sessions=database.session,
        asessions=database.asession,
        areads=database.aread,
        provisioner=None,
        admin_ids=frozenset(),
        audit=AuditService(
            sessions=database.session, writes=database.abegin, areads=database.aread
        ),
    )

    def last_used() -> datetime.datetime | None:
        with database.session(read_only=True) as session:
            return session.get(ApiToken, token_id).last_used_at

    async def use_it() -> None:
        assert (await users.afrom_token("kbt_seven")).github_id == 7
        first = last_used()
        assert first is not None
        await users.afrom_token("kbt_seven")
        assert last_used() == first
        with database.session() as session:
            session.get(ApiToken, token_id).last_used_at = first - datetime.timedelta(minutes=2)
        await users.afrom_token("kbt_seven")
        assert last_used() > first

    async def use_it_and_close() -> None:
        try:
            await use_it()
        finally:
            await database.adispose()

    anyio.run(use_it_and_close)


def test_the_async_engine_is_the_same_database_through_an_asyncio_driver() -> None:
    def mapped(url: str) -> str:
        return async_url(make_url(url)).render_as_string(hide_password=False)

    assert mapped("sqlite:////var/k.db") == "sqlite+aiosqlite:////var/k.db"
    assert mapped("postgresql://k:pw@db:5432/k") == "postgresql+psycopg://k:pw@db:5432/k"
    assert mapped("postgresql+psycopg://k@db/k") == "postgresql+psycopg://k@db/k"
    with pytest.raises(ValueError, match="mysql"):
        async_url(make_url("mysql://k@db/k"))


def test_start_up_does_not_import_the_asyncio_extension(tmp_path: Path) -> None:
    """It is made at first use: its imports are 35-50 ms that start-up need not pay."""
    program = (
        "import sys\n"
        "from kuberth.storage.database.engine import Database, make_engine, migrate\n"
        f"database = Database(make_engine('sqlite:///{tmp_path / 'k.db'}'))\n"
        "migrate(database.engine)\n"
        "print('sqlalchemy.ext.asyncio' in sys.modules)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "False"
