"""Sessions end on the server: sign-out (API and page), an operator's revoke, idleness, and the
user ending one of their other sessions all stop every copy of the cookie."""

from __future__ import annotations

import datetime
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import httpx
from sqlalchemy import text

from kuberth.devtools.github import StandInServer
from kuberth.storage.database.engine import make_engine
from tests.integration.signin import sign_in
from tests.timing import scaled

COOKIE = "kuberth_session"


@contextmanager
def browsers(url: str) -> Iterator[Callable[[], httpx.Client]]:
    """Browsers (cookie jars) on one Kuberth; all closed at the end."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(httpx.Client(base_url=url, timeout=scaled(60)))


def copy_of(url: str, browser: httpx.Client) -> httpx.Client:
    """Another client holding the same cookie, as an attacker who copied it would."""
    return httpx.Client(base_url=url, cookies={COOKIE: browser.cookies[COOKIE]}, timeout=scaled(60))


def assert_ended(client: httpx.Client) -> None:
    assert client.get("/api/v1/me").status_code == 401
    assert client.post("/api/v1/tokens", json={"name": "stolen"}).status_code == 401
    page = client.get("/dashboard")
    assert page.status_code == 303, page.text[:200]
    assert page.headers["location"].startswith("/auth/github/login")


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    with kuberth_server() as url, browsers(url) as browser:
        # Through the API.
        api_user = browser()
        assert (
            sign_in(
                api_user, github, login=f"s{secrets.token_hex(4)}", user_id=new_id()
            ).status_code
            == 302
        )
        with copy_of(url, api_user) as copied:
            assert copied.get("/api/v1/me").status_code == 200  # the copy works while it lasts
            assert api_user.post("/auth/logout").status_code == 204
            assert_ended(copied)
        # Through the page's form.
        page_user = browser()
        assert (
            sign_in(
                page_user, github, login=f"s{secrets.token_hex(4)}", user_id=new_id()
            ).status_code
            == 302
        )
        with copy_of(url, page_user) as copied:
            dashboard = page_user.get("/dashboard")
            assert dashboard.status_code == 200, dashboard.text[:200]
            csrf = re.search(r'name="csrf" value="([^"]+)"', dashboard.text)
            assert csrf, "the page has a sign-out form with its CSRF token"
            signed_out = page_user.post("/logout", data={"csrf": csrf.group(1)})
            assert signed_out.status_code == 303, signed_out.text[:200]
            assert_ended(copied)


def test_an_operators_revoke_ends_every_session_and_a_restore_does_not_revive_them(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    operator_id, user_id = new_id(), new_id()
    login = f"s{secrets.token_hex(4)}"
    with kuberth_server(admin_github_ids=[operator_id]) as url, browsers(url) as browser:
        laptop, phone, operator = browser(), browser(), browser()
        for device in (laptop, phone):
            assert sign_in(device, github, login=login, user_id=user_id).status_code == 302
        assert sign_in(operator, github, login=f"o{login}", user_id=operator_id).status_code == 302
        with copy_of(url, laptop) as copied:
            assert operator.post(f"/api/v1/admin/users/{user_id}/revoke").status_code == 204
            for client in (laptop, phone, copied):
                assert_ended(client)
            assert operator.post(f"/api/v1/admin/users/{user_id}/restore").status_code == 204
            for client in (laptop, phone, copied):
                assert_ended(client)
        # Restored, the user signs in again and has a session once more.
        assert sign_in(laptop, github, login=login, user_id=user_id).status_code == 302
        assert laptop.get("/api/v1/me").status_code == 200


def test_a_session_unused_for_the_idle_timeout_ends(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    sqlite_url: str,
) -> None:
    """The timeout is 60 s here; the test makes the session look older than that in the
    database rather than waiting a minute."""
    with kuberth_server(session_idle_timeout=60) as url, browsers(url) as browser:
        user = browser()
        assert (
            sign_in(user, github, login=f"s{secrets.token_hex(4)}", user_id=new_id()).status_code
            == 302
        )
        assert user.get("/api/v1/me").status_code == 200
        engine = make_engine(sqlite_url)
        try:
            with engine.begin() as connection:
                before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=59)
                connection.execute(
                    text("UPDATE web_sessions SET last_seen_at = :at"), {"at": before}
                )
            assert user.get("/api/v1/me").status_code == 200  # used in time: it goes on
            with engine.begin() as connection:
                idle = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=61)
                connection.execute(text("UPDATE web_sessions SET last_seen_at = :at"), {"at": idle})
            assert_ended(user)
            with engine.connect() as connection:  # and it is gone, not merely refused
                assert connection.scalar(text("SELECT count(*) FROM web_sessions")) == 0
        finally:
            engine.dispose()


def test_a_user_sees_their_sessions_and_ends_another_one(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    user_id, login = new_id(), f"s{secrets.token_hex(4)}"
    with kuberth_server() as url, browsers(url) as browser:
        laptop, phone, someone = browser(), browser(), browser()
        for device in (laptop, phone):
            assert sign_in(device, github, login=login, user_id=user_id).status_code == 302
        assert sign_in(someone, github, login=f"x{login}", user_id=new_id()).status_code == 302

        listed = laptop.get("/api/v1/sessions")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert len(items) == 2
        (current,) = [s for s in items if s["current"]]
        (other,) = [s for s in items if not s["current"]]
        assert current["user_agent"]
        assert current["created_at"] <= current["last_seen_at"]

        # Someone else cannot end it (nor see it): the same 404 as a session that never was.
        assert someone.delete(f"/api/v1/sessions/{other['id']}").status_code == 404
        assert [s["current"] for s in someone.get("/api/v1/sessions").json()["items"]] == [True]
        assert phone.get("/api/v1/me").status_code == 200

        assert laptop.delete(f"/api/v1/sessions/{other['id']}").status_code == 204
        assert_ended(phone)
        assert laptop.get("/api/v1/me").status_code == 200
        assert [s["id"] for s in laptop.get("/api/v1/sessions").json()["items"]] == [current["id"]]
        assert laptop.delete(f"/api/v1/sessions/{other['id']}").status_code == 404


def test_an_id_past_the_columns_range_is_a_422_naming_it(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    """Found by Schemathesis: such an id reached the database and came back as a 500."""
    with kuberth_server() as url, browsers(url) as browser:
        user = browser()
        login = f"s{secrets.token_hex(4)}"
        assert sign_in(user, github, login=login, user_id=new_id()).status_code == 302
        for path, field in (("sessions", "session_id"), ("tokens", "token_id")):
            for bad in ("227082769680667181056", "2147483648", "0"):
                refused = user.delete(f"/api/v1/{path}/{bad}")
                assert refused.status_code == 422, refused.text
                assert refused.json()["field"] == field
        assert user.get("/api/v1/me").status_code == 200
