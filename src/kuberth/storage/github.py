"""GitHub's REST API, as far as sign-in needs it: who the user is and which orgs/teams they are in.

The base URL is a setting, so GitHub Enterprise (``https://ghe.example.com/api/v3``) and the local
development stand-in work the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from kuberth.exceptions import UnavailableError, UpstreamError

#: GitHub asks every API client to send this media type.
_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


@dataclass(frozen=True)
class GitHubUser:
    id: int
    login: str
    name: str | None


class GitHubApi:
    """Calls made with the signing-in user's access token, which is never stored."""

    def __init__(self, api_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=api_url.rstrip("/"), headers=_HEADERS, timeout=timeout
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, token: str) -> httpx.Response:
        try:
            return await self._client.get(path, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as error:
            raise UnavailableError(
                f"GitHub is unreachable ({type(error).__name__})", retry_after=10
            ) from error

    async def user(self, token: str) -> GitHubUser:
        """The user the token belongs to.

        Raises:
            UpstreamError: GitHub refused the token or answered something unexpected.
            UnavailableError: GitHub is unreachable.
        """
        response = await self._get("/user", token)
        if response.status_code != 200:
            raise UpstreamError(f"GitHub refused to tell who signed in ({response.status_code})")
        body = response.json()
        return GitHubUser(id=int(body["id"]), login=str(body["login"]), name=body.get("name"))

    async def is_org_member(self, token: str, *, org: str, login: str) -> bool:
        """GitHub answers 204 for a member, 404 (or 302 for outsiders) otherwise."""
        response = await self._get(f"/orgs/{org}/members/{login}", token)
        return response.status_code == 204

    async def is_team_member(self, token: str, *, org: str, team: str, login: str) -> bool:
        response = await self._get(f"/orgs/{org}/teams/{team}/memberships/{login}", token)
        return response.status_code == 200 and response.json().get("state") == "active"
