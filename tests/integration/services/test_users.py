"""Recognising a token's or a session's user on the event loop, and signing in there (against the
real API server), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Callable, Collection

import anyio
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from kuberth.exceptions import ForbiddenError, NotFoundError, UnauthenticatedError
from kuberth.http.services import Services
from kuberth.services.audit import AuditService
from kuberth.services.principal import Principal
from kuberth.services.users import SESSION_ENDED, Recheck, UserService
from kuberth.storage.database.engine import Database, make_engine, migrate
from kuberth.storage.database.models import ApiToken, WebSession
from kuberth.storage.database.tokens import TokenStore
from kuberth.storage.database.users import NamespaceStore, UserStore
from kuberth.storage.database.web_sessions import WebSessionStore
from kuberth.storage.github import GitHubUser
from tests.integration.postgres import PostgresServer
from tests.integration.services.twins import same_answer
from tests.integration.slowing import DELAY, SlowProxy, ticks_while

pytestmark = pytest.mark.anyio

NOW = datetime.datetime.now(datetime.UTC)
ALICE = Principal(7, "alice", None, is_admin=False)


def users_of(
    database: Database, *, refused: Collection[str] = (), recheck: Recheck | None = None
) -> UserService:
    """The service, with a sign-up re-check that refuses these logins (or ``recheck``)."""

    class Refusing:
        async def aat_use(self, _id: int, login: str, _checked: datetime.datetime | None) -> None:
            if login in refused:
                raise ForbiddenError(f"{login} no longer passes")

        def due(self, login: str, _checked: datetime.datetime | None) -> bool:
            return login in refused

    return UserService(
        sessions=database.session,
        asessions=database.asession,
        areads=database.aread,
        provisioner=None,
        admin_ids=frozenset({9}),
        audit=AuditService(
            sessions=database.session, writes=database.abegin, areads=database.aread
        ),
        recheck=recheck or Refusing(),
    )


def add_users(database: Database) -> None:
    """alice (7), bob (8, revoked by an operator), carol (9, an operator); their tokens."""
    with database.session() as session:
        users = UserStore(session)
        for github_id, login in [(7, "alice"), (8, "bob"), (9, "carol")]:
            users.upsert(github_id=github_id, login=login, name=login.title())
        users.set_revoked(8, revoked=True)
        tokens = TokenStore(session)
        past = NOW - datetime.timedelta(seconds=1)
        tokens.add(user_id=7, name="live", token="kbt_alice", expires_at=None)
        tokens.add(user_id=7, name="old", token="kbt_expired", expires_at=past)
        tokens.add(user_id=8, name="bob", token="kbt_bob", expires_at=None)
        tokens.add(user_id=9, name="op", token="kbt_carol", expires_at=None)


async def test_a_token_is_answered_with_its_user_or_refused(database: Database) -> None:
    add_users(database)
    users = users_of(database, refused={"carol"})
    assert await users.afrom_token("kbt_alice") == Principal(7, "alice", "Alice", is_admin=False)
    invalid = "the API token is invalid, expired or revoked"
    for token, error, message in [
        ("kbt_expired", UnauthenticatedError, invalid),
        ("kbt_unknown", UnauthenticatedError, invalid),  # as a revoked token: it is deleted
        ("kbt_bob", ForbiddenError, "your access to Kuberth was revoked by an operator"),
        ("kbt_carol", ForbiddenError, "carol no longer passes"),  # the sign-up re-check's
    ]:
        with pytest.raises(error) as refused:
            await users.afrom_token(token)
        assert refused.value.message == message, token


async def test_a_recheck_that_asks_github_runs_beside_the_event_loop(database: Database) -> None:
    """A re-check due to ask GitHub (slow here: 0.5 s) is awaited, holding neither the loop nor
    a thread: other coroutines keep running meanwhile; one not due is not called at all."""
    add_users(database)
    calls: list[str] = []

    class SlowGitHub:
        async def aat_use(self, _id: int, login: str, _checked: datetime.datetime | None) -> None:
            calls.append(login)
            await anyio.sleep(0.5)

        def due(self, login: str, _checked: datetime.datetime | None) -> bool:
            return login == "alice"

    users = users_of(database, recheck=SlowGitHub())
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        await users.afrom_token("kbt_alice")
        group.cancel_scope.cancel()
    assert calls == ["alice"]
    assert ticks >= 10, ticks  # ~50 while the re-check slept; none if it had held the loop
    await users.afrom_token("kbt_carol")  # not due: not called
    assert calls == ["alice"]


async def test_the_principal_comes_with_the_namespaces_its_user_owns(database: Database) -> None:
    """Read in the token's (the session's) own statement: what the ownership check then uses."""
    add_users(database)
    with database.session() as session:
        for name, owner in [("alice", 7), ("alice-2", 7), ("bob", 8)]:
            NamespaceStore(session).record(name=name, owner_id=owner, personal=name == "alice")
        WebSessionStore(session).add(user_id=7, secret="s3cret", user_agent=None)
    users = users_of(database)
    for principal in (
        await users.afrom_token("kbt_alice"),
        await users.afrom_session(7, "s3cret"),
    ):
        assert principal.namespaces == frozenset({"alice", "alice-2"})
    assert (await users.afrom_token("kbt_carol")).namespaces == frozenset()


async def test_a_tokens_use_is_written_at_most_once_a_minute(database: Database) -> None:
    add_users(database)
    users = users_of(database)

    def last_used() -> datetime.datetime | None:
        with database.session() as session:
            return session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "live"))

    assert last_used() is None
    await users.afrom_token("kbt_alice")
    first = last_used()
    assert first is not None
    await users.afrom_token("kbt_alice")
    assert last_used() == first
    with database.session() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.name == "live")
            .values(last_used_at=first - datetime.timedelta(minutes=2))
        )
    await users.afrom_token("kbt_alice")
    assert last_used() > first


async def test_a_session_is_answered_with_its_user_or_refused(database: Database) -> None:
    add_users(database)
    users = users_of(database)
    mine = await users.astart_session(ALICE, user_agent="test")
    bobs = await users.astart_session(Principal(8, "bob", None, is_admin=False), user_agent=None)
    assert await users.afrom_session(7, mine) == Principal(7, "alice", "Alice", is_admin=False)
    for user_id, secret, error, message in [
        (8, mine, UnauthenticatedError, SESSION_ENDED),  # someone else's cookie
        (7, "unknown", UnauthenticatedError, SESSION_ENDED),
        ("7", mine, UnauthenticatedError, "sign in first"),
        (8, bobs, ForbiddenError, "your access to Kuberth was revoked by an operator"),
    ]:
        with pytest.raises(error) as refused:
            await users.afrom_session(user_id, secret)
        assert refused.value.message == message, (user_id, secret)


async def test_an_idle_session_ends_and_a_used_one_is_touched_once_a_minute(
    database: Database,
) -> None:
    add_users(database)
    users = users_of(database)
    secret = await users.astart_session(ALICE, user_agent=None)

    def last_seen() -> datetime.datetime | None:
        with database.session() as session:
            return session.scalar(select(WebSession.last_seen_at))

    def seen(ago: datetime.timedelta) -> None:
        with database.session() as session:
            session.execute(update(WebSession).values(last_seen_at=NOW - ago))

    seen(datetime.timedelta(minutes=2))
    before = last_seen()
    await users.afrom_session(7, secret)
    touched = last_seen()
    assert touched > before
    await users.afrom_session(7, secret)
    assert last_seen() == touched  # within the minute: no write

    seen(datetime.timedelta(hours=13))  # past the 12 h idle timeout
    with pytest.raises(UnauthenticatedError, match=SESSION_ENDED):
        await users.afrom_session(7, secret)
    assert last_seen() is None  # ended: the cookie's copies are refused from now on


async def test_a_users_browsers_are_listed_the_asking_one_marked(database: Database) -> None:
    add_users(database)
    users = users_of(database)
    laptop = await users.astart_session(ALICE, user_agent="laptop")
    await users.astart_session(ALICE, user_agent="phone")
    await users.astart_session(Principal(9, "carol", None, is_admin=True), user_agent="carol's")
    with database.session() as session:  # the laptop was last used an hour ago
        session.execute(
            update(WebSession)
            .where(WebSession.user_agent == "laptop")
            .values(last_seen_at=NOW - datetime.timedelta(hours=1))
        )
    listed = await users.web_sessions(ALICE, current=laptop)
    assert [(s.user_agent, s.current) for s in listed] == [("phone", False), ("laptop", True)]
    assert listed[1].last_seen_at == NOW - datetime.timedelta(hours=1)
    assert [s.current for s in await users.web_sessions(ALICE, current=None)] == [False, False]
    assert await users.web_sessions(Principal(8, "bob", None, is_admin=False), current=None) == []


async def test_a_browser_is_ended_by_its_user_only(database: Database) -> None:
    add_users(database)
    users = users_of(database)
    carol = Principal(9, "carol", None, is_admin=True)
    phone = await users.astart_session(ALICE, user_agent="phone")
    await users.astart_session(carol, user_agent="carol's")
    [mine] = await users.web_sessions(ALICE, current=phone)
    [hers] = await users.web_sessions(carol, current=None)

    # Someone else's session is "not found", exactly as one that does not exist; an operator's
    # too (they end others' sessions by revoking the user).
    with pytest.raises(NotFoundError, match=f"session {hers.id} not found"):
        await users.end_web_session(ALICE, hers.id)
    with pytest.raises(NotFoundError, match=f"session {mine.id} not found"):
        await users.end_web_session(carol, mine.id)
    await users.end_web_session(ALICE, mine.id)
    with pytest.raises(NotFoundError, match=f"session {mine.id} not found"):
        await users.end_web_session(ALICE, mine.id)  # already ended

    with pytest.raises(UnauthenticatedError, match=SESSION_ENDED):
        await users.afrom_session(7, phone)  # every copy of its cookie is refused
    assert await users.web_sessions(ALICE, current=phone) == []
    assert [s.user_agent for s in await users.web_sessions(carol, current=None)] == ["carol's"]


def _provisioned(personal: str) -> float:
    counted = REGISTRY.get_sample_value(
        "kuberth_tenant_namespaces_provisioned_total", {"personal": personal}
    )
    return counted or 0.0


async def test_a_sign_in_on_the_event_loop_answers_as_the_sync_one(
    build: Callable[..., Services], new_id: Callable[[], int]
) -> None:
    """A first sign-in makes the personal namespace (counted, audited); a later one, sync or
    async, adopts it; a revoked user is refused by both."""
    services = build()
    user = GitHubUser(new_id(), f"s{secrets.token_hex(3)}", "Sam")
    made = _provisioned("true")

    principal, namespace = await services.users.asign_in(user)

    assert (principal.github_id, principal.login, namespace) == (user.id, user.login, user.login)
    assert _provisioned("true") == made + 1
    logged = await services.audit.list(principal, namespace=namespace)
    assert [(e.action, e.kind, e.result) for e in logged] == [("create", "Namespace", "ok")]
    again = await same_answer(
        lambda: services.users.sign_in(user), lambda: services.users.asign_in(user)
    )
    assert again == (principal, namespace)
    assert _provisioned("true") == made + 1  # adopted, not made again
    with services.database.session() as session:
        UserStore(session).set_revoked(user.id, revoked=True)
    refused = await same_answer(
        lambda: services.users.sign_in(user), lambda: services.users.asign_in(user)
    )
    assert isinstance(refused, ForbiddenError)


async def test_a_sign_in_leaves_the_event_loop_free_while_kubernetes_answers(
    slow_services: Services, new_id: Callable[[], int]
) -> None:
    """The namespace and its four baseline objects, each answered DELAY late."""
    user = GitHubUser(new_id(), f"s{secrets.token_hex(3)}", None)
    started = time.monotonic()

    (principal, _), ticks = await ticks_while(slow_services.users.asign_in(user))

    took = time.monotonic() - started
    assert principal.github_id == user.id
    assert took >= 5 * DELAY
    assert ticks >= 20, (ticks, took)  # ~100 or more on an idle machine; none had it held the loop


async def test_a_sign_in_cut_off_half_way_still_makes_the_user_whole(
    slow_services: Services, new_id: Callable[[], int]
) -> None:
    """Cancelled while Kubernetes answers (the browser gone, a shutdown), the sign-in still ends
    with the namespace made, the user recorded and the making audited."""
    user = GitHubUser(new_id(), f"s{secrets.token_hex(3)}", None)
    async with anyio.create_task_group() as group:
        group.start_soon(slow_services.users.asign_in, user)
        await anyio.sleep(2.5 * DELAY)  # the namespace asked for, its baseline not yet
        group.cancel_scope.cancel()
    with slow_services.database.session() as session:
        recorded = UserStore(session).get(user.id)
        assert recorded is not None
        principal = slow_services.users.principal(recorded)
        personal = NamespaceStore(session).personal(user.id)
    assert personal is not None
    assert personal.name == user.login
    assert (await slow_services.namespaces.get(principal, user.login)).name == user.login
    logged = await slow_services.audit.list(principal, namespace=user.login)
    assert [(e.action, e.kind, e.result) for e in logged] == [("create", "Namespace", "ok")]


async def test_a_sign_out_leaves_the_event_loop_free_while_the_database_answers(
    postgres: PostgresServer,
) -> None:
    """What the sign-out asks (the session's user, then its end) of a PostgreSQL that answers
    DELAY late."""
    url = postgres.create_database(f"kt_{secrets.token_hex(6)}")
    direct = Database(make_engine(url))
    migrate(direct.engine)
    add_users(direct)
    with direct.session() as session:
        WebSessionStore(session).add(user_id=7, secret="s3cret", user_agent=None)
    direct.engine.dispose()

    async def sign_out(users: UserService) -> None:
        await users.afrom_session(7, "s3cret")
        await users.aend_session("s3cret")

    with SlowProxy(postgres.port, delay=DELAY) as proxy:
        slow = Database(make_engine(url.replace(f":{postgres.port}/", f":{proxy.port}/")))
        try:
            _, ticks = await ticks_while(sign_out(users_of(slow)))
            with pytest.raises(UnauthenticatedError, match=SESSION_ENDED):
                await users_of(slow).afrom_session(7, "s3cret")
        finally:
            await slow.adispose()
    assert ticks >= 3 * DELAY / 0.01 / 4, ticks  # connecting and three statements
