"""The sign-up rules' re-check after sign-in, on the event loop: GitHub (the stand-in, answering
slowly through a proxy), the database and Kubernetes are awaited, and no worker thread is held."""

from __future__ import annotations

import asyncio
import datetime
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar
from urllib.parse import urlsplit

import anyio
import pytest
from sqlalchemy.orm import Session

from kuberth.devtools.github import StandInServer, StandInUser
from kuberth.exceptions import ForbiddenError
from kuberth.http.services import Services
from kuberth.services.signup_review import NO_LONGER_ALLOWED
from kuberth.storage.database.models import User
from kuberth.storage.database.tokens import TokenStore
from kuberth.storage.database.users import BY_SIGNUP_RULES, UserStore
from tests.integration.slowing import DELAY, SlowProxy
from tests.timing import scaled

pytestmark = pytest.mark.anyio

T = TypeVar("T")

#: Long ago enough that every verdict here is stale.
LONG_AGO = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)


@pytest.fixture
def slow_github(github: StandInServer) -> Iterator[str]:
    """The stand-in's API URL through a proxy that answers DELAY late."""
    port = urlsplit(github.url).port
    assert port is not None
    with SlowProxy(port, delay=DELAY) as proxy:
        yield f"http://127.0.0.1:{proxy.port}/api/v3"


@pytest.fixture
def org_rules(
    build: Callable[..., Services], github: StandInServer, slow_github: str
) -> tuple[Services, str]:
    """Services letting in the members of a new org, asked of the slow GitHub; and the org."""
    org = f"org{secrets.token_hex(3)}"
    services = build(
        signup_anyone=False,
        signup_orgs=[org],
        signup_membership_token=github.state.membership_token(),
        github_api_url=slow_github,
        signup_recheck_interval=600,
    )
    return services, org


def add_user(services: Services, github: StandInServer, github_id: int, *, orgs: set[str]) -> str:
    """A user whose verdict is stale, in these GitHub orgs; their API token."""
    login = f"s{secrets.token_hex(4)}"
    with github.state.lock:
        github.state.members[login] = StandInUser(github_id, login, orgs=orgs)
    token = f"kbt_{secrets.token_urlsafe(16)}"
    with services.database.session() as session:
        UserStore(session).upsert(github_id=github_id, login=login, name=None)
        UserStore(session).set_signup_checked(github_id, LONG_AGO)
        TokenStore(session).add(user_id=github_id, name="ci", token=token, expires_at=None)
    return token


async def user_row(services: Services, github_id: int) -> User:
    async with services.database.asession() as session:
        user = await session.run_sync(lambda s: _get(s, github_id))
    assert user is not None
    return user


def _get(session: Session, github_id: int) -> User | None:
    user = UserStore(session).get(github_id)
    if user is not None:
        session.expunge(user)
    return user


async def threads_and_ticks_while(work: Awaitable[T]) -> tuple[T | Exception, int, int]:
    """``work``'s answer (or error), how often a task sleeping 10 ms woke meanwhile, and the most
    worker threads (anyio's, the pool a request's sync work goes to) busy at once meanwhile."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    ticks = busy = 0

    async def tick() -> None:
        nonlocal ticks, busy
        while True:
            await anyio.sleep(0.01)
            ticks += 1
            busy = max(busy, int(limiter.borrowed_tokens))

    answer: T | Exception
    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        try:
            answer = await work
        except Exception as error:
            answer = error
        group.cancel_scope.cancel()
    return answer, ticks, busy


async def test_a_due_recheck_asks_github_on_the_event_loop_holding_no_thread(
    org_rules: tuple[Services, str], github: StandInServer, new_id: Callable[[], int]
) -> None:
    """A member's stale verdict is asked again and renewed; a former member is refused and
    revoked. Meanwhile the loop runs on and no worker thread is busy."""
    services, org = org_rules
    member, former = new_id(), new_id()
    member_token = add_user(services, github, member, orgs={org})
    former_token = add_user(services, github, former, orgs=set())

    principal, ticks, busy = await threads_and_ticks_while(services.users.afrom_token(member_token))

    assert not isinstance(principal, Exception), principal
    assert principal.github_id == member
    assert ticks >= 10, ticks  # ~DELAY / 0.01 while GitHub answered; none had the loop been held
    assert busy == 0
    checked = (await user_row(services, member)).signup_checked_at
    assert checked is not None
    assert checked.replace(tzinfo=datetime.UTC) > LONG_AGO + datetime.timedelta(hours=1)

    refused, ticks, busy = await threads_and_ticks_while(services.users.afrom_token(former_token))

    assert isinstance(refused, ForbiddenError), refused
    assert refused.message == NO_LONGER_ALLOWED
    assert ticks >= 10, ticks
    assert busy == 0
    revoked = await user_row(services, former)
    assert revoked.revoked_at is not None
    assert revoked.revoked_reason == BY_SIGNUP_RULES


async def test_a_cancelled_sweep_stops_at_the_next_user(
    org_rules: tuple[Services, str], github: StandInServer, new_id: Callable[[], int]
) -> None:
    """Cancelled (leadership lost) while GitHub is asked about one user, the leader's run lets
    that user's re-check finish, revoke included, and asks about no other."""
    services, _ = org_rules
    ids = [new_id() for _ in range(3)]
    for github_id in ids:
        add_user(services, github, github_id, orgs=set())  # all left the org
    stop = threading.Event()
    running = asyncio.create_task(services.reconciler.run(stop, interval=3600))

    async def asked() -> list[User]:
        rows = [await user_row(services, github_id) for github_id in ids]
        return [u for u in rows if u.signup_checked_at.replace(tzinfo=datetime.UTC) > LONG_AGO]

    with anyio.fail_after(scaled(120)):  # the reconcile pass first, then the sweep
        while not await asked():
            await anyio.sleep(0.02)
    running.cancel()  # while GitHub is asked about the first (DELAY late)
    with pytest.raises(asyncio.CancelledError):
        await running

    assert stop.is_set()
    first = await asked()
    assert len(first) == 1, [u.id for u in first]
    assert first[0].revoked_reason == BY_SIGNUP_RULES  # finished, not cut half-way
    for github_id in set(ids) - {first[0].id}:
        untouched = await user_row(services, github_id)
        assert untouched.revoked_at is None
