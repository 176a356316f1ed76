"""GitHub's REST API, as far as sign-in needs it: who the user is and which orgs/teams they are in.

The base URL is a setting, so GitHub Enterprise (``https://ghe.example.com/api/v3``) and the local
development stand-in work the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, PositiveInt, StringConstraints, ValidationError

from kuberth.exceptions import UnavailableError, UpstreamError

if TYPE_CHECKING:  # imported at the first sign-in: httpx (its CLI's imports with it) and a
    import httpx  # client's TLS context are start-up CPU that /readyz does not need

#: GitHub asks every API client to send this media type.
_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


@dataclass(frozen=True)
class GitHubUser:
    id: int
    login: str
    name: str | None


#: What GitHub lets a login be: 1-39 letters, digits and single hyphens, no hyphen at either end.
#: Names are derived from logins on the premise that a login never holds ``--`` (naming.py).
LOGIN_PATTERN = r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$"


class _UserBody(BaseModel):
    """GitHub's ``/user``, strictly: an id that is a positive integer (not ``true``, ``4242.7`` or
    ``"12345"``), a login GitHub could have issued. Anything else is not trusted as an identity."""

    model_config = ConfigDict(strict=True, frozen=True)

    id: PositiveInt
    login: Annotated[str, StringConstraints(pattern=LOGIN_PATTERN)]
    name: str | None = None


class GitHubApi:
    """Calls made with the signing-in user's access token, which is never stored."""

    def __init__(self, api_url: str, *, timeout: float = 10.0) -> None:
        self._base_url = api_url.rstrip("/")
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        """The client, made at the first sign-in rather than at start-up."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                base_url=self._base_url, headers=_HEADERS, timeout=self._timeout
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def get(self, path: str, token: str) -> httpx.Response:
        """GET ``path`` of GitHub's API with ``token``, whatever the status.

        Raises:
            UnavailableError: GitHub is unreachable.
        """
        import httpx

        try:
            return await self._http().get(path, headers={"Authorization": f"Bearer {token}"})
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
        response = await self.get("/user", token)
        if response.status_code != 200:
            raise UpstreamError(f"GitHub refused to tell who signed in ({response.status_code})")
        try:
            body = _UserBody.model_validate_json(response.content)
        except ValidationError as error:
            where = ", ".join(".".join(map(str, e["loc"])) or "the body" for e in error.errors())
            raise UpstreamError(
                f"GitHub's answer to who signed in is not a GitHub user (at {where})"
            ) from None
        return GitHubUser(id=body.id, login=body.login, name=body.name)

    async def is_org_member(self, token: str, *, org: str, login: str) -> bool:
        """GitHub answers 204 for a member, 404 (or 302 for outsiders) otherwise."""
        response = await self.get(f"/orgs/{org}/members/{login}", token)
        return response.status_code == 204

    async def is_team_member(self, token: str, *, org: str, team: str, login: str) -> bool:
        response = await self.get(f"/orgs/{org}/teams/{team}/memberships/{login}", token)
        return response.status_code == 200 and response.json().get("state") == "active"


class GitHubMembership:
    """Org and team membership asked with the operator's token (``read:org``), not the user's,
    which Kuberth does not keep: the sign-up rules' re-checks after sign-in, on the event loop (a
    request whose verdict went stale, the leader's sign-up sweep). Through :class:`GitHubApi`'s
    client: one connection pool to GitHub, made at the first call.

    Each answer is True (a member), False (GitHub said not), or None (no answer to trust: GitHub
    unreachable or failing, the token refused or rate-limited, or unable to see the members).
    """

    def __init__(self, github: GitHubApi, token: str) -> None:
        self._github = github
        self._token = token

    async def _get(self, path: str) -> httpx.Response | None:
        try:
            return await self._github.get(path, self._token)
        except UnavailableError:
            return None

    async def is_org_member(self, *, org: str, login: str) -> bool | None:
        """204: a member; 404: not; 302: the token's owner cannot see the org's members."""
        response = await self._get(f"/orgs/{org}/members/{login}")
        if response is None:
            return None
        if response.status_code in (204, 404):
            return response.status_code == 204
        return None

    async def is_team_member(self, *, org: str, team: str, login: str) -> bool | None:
        """200 with ``"state": "active"``: a member (``pending``: invited, not yet); 404: not."""
        response = await self._get(f"/orgs/{org}/teams/{team}/memberships/{login}")
        if response is None:
            return None
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        return isinstance(body, dict) and body.get("state") == "active"
