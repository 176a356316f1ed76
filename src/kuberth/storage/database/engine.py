"""The engine, sessions, and migrations to the newest schema at start-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from kuberth.exceptions import DatabaseUnavailableError

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL and a busy timeout so concurrent requests wait, not fail."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    """Hands out sessions; a database that cannot be reached becomes a 503 for the client."""

    def __init__(self, engine: Engine, *, retry_after: int = 5) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._retry_after = retry_after

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as error:
            raise DatabaseUnavailableError(
                "the database is unavailable", retry_after=self._retry_after
            ) from error

    def check_ready(self) -> None:
        """A trivial query.

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except DBAPIError as error:
            raise DatabaseUnavailableError(
                "the database is unavailable", retry_after=self._retry_after
            ) from error
