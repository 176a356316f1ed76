"""Driving the real OAuth flow through the GitHub stand-in, as a browser would."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

import httpx

from kuberth.devtools.github import StandInServer
from tests.timing import scaled

CSRF_HEADER = "X-CSRF-Token"


def authorize(
    client: httpx.Client,
    github: StandInServer,
    *,
    login: str,
    user_id: int,
    orgs: Iterable[str] = (),
    teams: Iterable[str] = (),
    next: str | None = None,
) -> str:
    """Start sign-in at Kuberth and approve it at GitHub; returns Kuberth's callback path+query."""
    start = client.get("/auth/github/login", params={"next": next} if next else None)
    assert start.status_code == 302, start.text
    location = urlsplit(start.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == github.url
    params = dict(parse_qsl(location.query))
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"]
    approved = httpx.post(
        f"{github.url}/login/oauth/authorize",
        data={
            **params,
            "login": login,
            "user_id": str(user_id),
            "orgs": ",".join(orgs),
            "teams": ",".join(teams),
        },
        timeout=scaled(60),  # httpx's default 5 s is too short on a busy machine
    )
    assert approved.status_code == 302, approved.text
    callback = urlsplit(approved.headers["location"])
    return f"{callback.path}?{callback.query}"


def sign_in(client: httpx.Client, github: StandInServer, **kwargs: object) -> httpx.Response:
    """The whole flow; returns Kuberth's answer to GitHub's redirect (302 when signed in).

    Signed in, the client then sends the session's CSRF token with every request, as a script
    of Kuberth's own would: writes the cookie authenticates need it.
    """
    answer = client.get(authorize(client, github, **kwargs))
    client.headers.pop(CSRF_HEADER, None)  # the last session's, if the client had one
    if answer.status_code == 302:
        client.headers[CSRF_HEADER] = csrf_token(client)
    return answer


def csrf_token(client: httpx.Client) -> str:
    """The CSRF token of the client's session, as Kuberth hands it to the cookie's holder."""
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    token = me.json()["csrf_token"]
    assert isinstance(token, str)
    assert token
    return token
