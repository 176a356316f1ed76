"""The database on the event loop: an async engine beside the sync one, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from kuberth.cluster.plane import free_port
from kuberth.exceptions import DatabaseUnavailableError
from kuberth.storage.database.engine import Database, make_engine, migrate

pytestmark = pytest.mark.anyio


async def test_both_engines_see_one_database_with_the_same_settings(database: Database) -> None:
    with database.session() as session:
        session.execute(
            text(
                "INSERT INTO users (id, login, created_at, last_sign_in_at) "
                "VALUES (1, 'one', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    async with database.aread() as connection:
        assert (await connection.execute(text("SELECT login FROM users"))).scalar() == "one"
    async with database.asession() as session:
        await session.execute(text("UPDATE users SET login = 'uno'"))
    with database.read() as connection:
        assert connection.execute(text("SELECT login FROM users")).scalar() == "uno"

    engine = database.async_engine
    assert engine.pool.size() == 10  # type: ignore[attr-defined]
    async with database.aread() as connection:
        if engine.dialect.name == "sqlite":
            pragmas = ["journal_mode", "foreign_keys", "busy_timeout"]
            found = [(await connection.exec_driver_sql(f"PRAGMA {p}")).scalar() for p in pragmas]
            assert found == ["wal", 1, 30000]
        else:  # reads without a transaction, as the sync reads
            raw = await connection.get_raw_connection()
            assert raw.driver_connection.autocommit
            assert connection.sync_connection.dialect.driver == "psycopg"


async def test_a_session_that_fails_is_rolled_back(database: Database) -> None:
    async def insert_then_fail() -> None:
        async with database.asession() as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, login, created_at, last_sign_in_at) "
                    "VALUES (2, 'two', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            raise ValueError("midway")

    with pytest.raises(ValueError, match="midway"):
        await insert_then_fail()
    async with database.aread() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM users"))).scalar() == 0


async def test_an_in_memory_sqlite_is_one_database_for_both_engines() -> None:
    database = Database(make_engine("sqlite://"))
    try:
        migrate(database.engine)
        async with database.aread() as connection:
            count = await connection.execute(text("SELECT count(*) FROM alembic_version"))
            assert count.scalar() == 1
    finally:
        await database.adispose()


@pytest.mark.usefixtures("aiosqlite_threads_ended")
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_an_unreachable_database_is_a_503_on_the_async_paths(kind: str) -> None:
    url = (
        "sqlite:///file:/nonexistent-kuberth/k.db?mode=ro&uri=true"
        if kind == "sqlite"
        else f"postgresql+psycopg://kuberth@127.0.0.1:{free_port()}/kuberth"
    )
    database = Database(make_engine(url), retry_after=7)
    try:
        with pytest.raises(DatabaseUnavailableError) as read:
            async with database.aread() as connection:
                await connection.execute(text("SELECT 1"))
        with pytest.raises(DatabaseUnavailableError) as write:
            async with database.asession() as session:
                await session.execute(text("SELECT 1"))
        assert read.value.retry_after == write.value.retry_after == 7
    finally:
        await database.adispose()
