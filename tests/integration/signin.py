"""Driving the real OAuth flow through the GitHub stand-in, as a browser would."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

import httpx

from kuberth.devtools.github import StandInServer
from tests.timing import scaled


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
    """The whole flow; returns Kuberth's answer to GitHub's redirect (302 when signed in)."""
    return client.get(authorize(client, github, **kwargs))
