"""The engine, sessions, and migrations to the newest schema at start-up."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from kuberth.exceptions import DatabaseUnavailableError

if TYPE_CHECKING:  # imported when first used: 35-50 ms, which start-up to ready need not pay
    from sqlalchemy.ext.asyncio import (
        AsyncConnection,
        AsyncEngine,
        AsyncSession,
        async_sessionmaker,
    )

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL and a busy timeout so concurrent requests wait, not fail.

    Both pools allow 30 connections, so requests in the server's worker threads rarely wait
    for one (SQLite's default pool had 15). An in-memory SQLite becomes a named one with a
    shared cache: every connection, and the async engine's, then sees the same database.
    """
    parsed = _shared_memory(make_url(url))
    if parsed.get_backend_name() == "sqlite" and not _in_memory(parsed):
        path = parsed.database or ""
        if not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, **_engine_options(parsed))
    _sqlite_pragmas(engine)
    return engine


def async_url(url: URL) -> URL:
    """The same database through an asyncio driver: aiosqlite, or psycopg 3 (async itself).

    Raises:
        ValueError: neither SQLite nor PostgreSQL.
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(f"no asyncio driver for {backend} databases")


def make_async_engine(url: URL) -> AsyncEngine:
    """The async twin of :func:`make_engine`'s engine for ``url``: same pools and pragmas."""
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = async_url(url)
    engine = create_async_engine(parsed, **_engine_options(parsed))
    _sqlite_pragmas(engine.sync_engine)
    return engine


def _in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _shared_memory(url: URL) -> URL:
    if url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:"):
        return url
    name = f"file:kuberth-{secrets.token_hex(8)}"
    return url.set(database=name, query={"mode": "memory", "cache": "shared", "uri": "true"})


def _engine_options(url: URL) -> dict[str, Any]:
    """What both engines are made with: pool sizes, and SQLite's 30 s busy timeout."""
    if url.get_backend_name() != "sqlite":
        return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    options: dict[str, Any] = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    if not _in_memory(url):
        options.update(pool_size=10, max_overflow=20)
    else:  # pools that keep a connection open, or the database would go with the last one
        async_driver = url.get_driver_name() == "aiosqlite"
        options["poolclass"] = StaticPool if async_driver else SingletonThreadPool
    return options


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL (readers do not wait for a writer) and foreign keys on every new SQLite connection."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(.*?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([\w.-]+)[\"']")


def _head_revisions() -> set[str] | None:
    """The newest revisions of the migration scripts, read without importing Alembic (a tenth
    of a second at every start-up); None when a script is not in the plain form expected, and
    then Alembic decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(script.read_text()))
        revision = _QUOTED.fullmatch(found.get("revision", ""))
        down = found.get("down_revision", "")
        parent = _QUOTED.fullmatch(down)
        if revision is None or (parent is None and down != "None"):
            return None
        revisions.add(revision.group(1))
        if parent is not None:
            parents.add(parent.group(1))
    return (revisions - parents) or None


def _at_head(engine: Engine) -> bool:
    heads = _head_revisions()
    if heads is None:
        return False
    try:
        with engine.connect() as connection:
            current = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    except DBAPIError:
        return False  # no alembic_version table yet: an empty database
    return current == heads


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). A database already there is
    recognised with one query, without Alembic."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        _lock_migrations(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


#: Any constant both replicas agree on: the key of PostgreSQL's advisory lock for migrations.
MIGRATION_LOCK_KEY = 0x6B75626572746801  # "kuberth" and a 1


def _lock_migrations(connection: Connection) -> None:
    """Replicas starting at once migrate one after another, not into each other.

    On PostgreSQL the transaction takes an advisory lock held until it commits; the next replica
    waits for it, then finds the schema at head and does nothing. (Its DDL is transactional, so a
    migration is all or nothing.) SQLite is for a single replica.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


class Sessions(Protocol):
    """What services are given to open sessions: ``Database.session``."""

    def __call__(self, *, read_only: bool = ...) -> AbstractContextManager[Session]: ...


class Reads(Protocol):
    """What services are given for their per-request checks: ``Database.read``."""

    def __call__(self) -> AbstractContextManager[Connection]: ...


class AsyncSessions(Protocol):
    """What services are given to write on the event loop: ``Database.asession``."""

    def __call__(self) -> AbstractAsyncContextManager[AsyncSession]: ...


class AsyncWrites(Protocol):
    """What services are given to write with Core statements on the event loop:
    ``Database.abegin``."""

    def __call__(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


class AsyncReads(Protocol):
    """What services are given for their per-request checks on the event loop:
    ``Database.aread``."""

    def __call__(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


class _AsyncEngines(NamedTuple):
    engine: AsyncEngine
    #: Autocommit on PostgreSQL, as the sync reads.
    reads: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


#: Set in a session's ``info`` by the writes that change what a credential proves (a token
#: deleted, a user revoked, a namespace's owner recorded or forgotten); see
#: :attr:`Database.principals_epoch`.
PRINCIPALS_CHANGED = "kuberth.principals_changed"


def principals_changed(session: Session | AsyncSession) -> None:
    """Note that this transaction changes what some credential proves: when it commits, every
    verdict this process keeps about a credential is stale."""
    session.info[PRINCIPALS_CHANGED] = True


class Database:
    """Hands out sessions; a database that cannot be reached becomes a 503 for the client."""

    def __init__(self, engine: Engine, *, retry_after: int = 5) -> None:
        self.engine = engine
        #: Moves on (after the commit) with every transaction of this process that called
        #: :func:`principals_changed`: a verdict on a credential read before the move is stale.
        #: (An increment two threads race on moves it by one, not two: still a move.)
        self.principals_epoch = 0
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Reads need no transaction. PostgreSQL: autocommit saves the BEGIN and ROLLBACK round
        # trips. SQLite: its driver begins transactions only for writes, and switching a
        # connection to autocommit and back costs more than the transaction it saves.
        self._read_engine = (
            engine
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._reads = sessionmaker(self._read_engine, expire_on_commit=False)
        self._retry_after = retry_after
        self._async: _AsyncEngines | None = None

    @property
    def async_engine(self) -> AsyncEngine:
        """The same database through an asyncio driver."""
        return self._async_engines().engine

    def _async_engines(self) -> _AsyncEngines:
        """Made at first use: start-up (to ready) does not pay for the asyncio extension, nor
        does a process that never uses it (the CLI's commands)."""
        if self._async is None:
            from sqlalchemy.ext.asyncio import async_sessionmaker

            engine = make_async_engine(self.engine.url)
            reads = (  # as the sync engine's, see __init__
                engine
                if engine.dialect.name == "sqlite"
                else engine.execution_options(isolation_level="AUTOCOMMIT")
            )
            self._async = _AsyncEngines(
                engine, reads, async_sessionmaker(engine, expire_on_commit=False)
            )
        return self._async

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads that need no consistency between them, made with Core
        statements: what every request's authentication and ownership checks are. No ORM
        session (a tenth of a millisecond per request) and no transaction."""
        with self._unavailable_is_503(), self._read_engine.connect() as connection:
            yield connection

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error.

        ``read_only`` sessions run without a transaction (autocommit): no BEGIN and COMMIT round
        trips around a single SELECT, which is what most requests' checks are. Use it only for
        reads that need no consistency between statements; every statement sees the newest data.
        """
        with self._unavailable_is_503():
            if read_only:
                with self._reads() as session:
                    yield session
            else:
                with self._sessions.begin() as session:
                    yield session
                self._committed(session)

    @asynccontextmanager
    async def aread(self) -> AsyncIterator[AsyncConnection]:
        """:meth:`read` on the event loop: a connection for Core reads, no transaction (autocommit
        on PostgreSQL).

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        with self._unavailable_is_503():
            async with self._async_engines().reads.connect() as connection:
                yield connection

    @asynccontextmanager
    async def abegin(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction, committed on success, rolled back on any error:
        for writes that need no ORM (the audit log's). No session: its unit of work cost a
        fifth of an insert's CPU.

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        with self._unavailable_is_503():
            async with self._async_engines().engine.begin() as connection:
                yield connection

    @asynccontextmanager
    async def asession(self) -> AsyncIterator[AsyncSession]:
        """:meth:`session` on the event loop: committed on success, rolled back on any error.

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        with self._unavailable_is_503():
            async with self._async_engines().sessions.begin() as session:
                yield session
            self._committed(session)

    def _committed(self, session: Session | AsyncSession) -> None:
        if session.info.pop(PRINCIPALS_CHANGED, False):
            self.principals_epoch += 1

    async def adispose(self) -> None:
        """Close both engines' pooled connections (at shutdown, on the event loop: the async
        pool's connections belong to it)."""
        self.engine.dispose()
        if self._async is not None:
            await self._async.engine.dispose()

    @contextmanager
    def _unavailable_is_503(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as error:
            raise DatabaseUnavailableError(
                "the database is unavailable", retry_after=self._retry_after
            ) from error

    async def acheck_ready(self) -> None:
        """A trivial query, on the event loop's engine (the one requests use).

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        try:
            async with self._async_engines().reads.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
        except DBAPIError as error:
            raise DatabaseUnavailableError(
                "the database is unavailable", retry_after=self._retry_after
            ) from error
