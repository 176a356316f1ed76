"""Who may sign up: anyone, listed logins, or members of listed orgs/teams. Nothing set: nobody."""

from __future__ import annotations

from dataclasses import dataclass

from kuberth.storage.github import GitHubApi, GitHubMembership, GitHubUser


@dataclass(frozen=True)
class SignupRules:
    anyone: bool
    logins: frozenset[str]
    orgs: tuple[str, ...]
    teams: tuple[tuple[str, str], ...]  # (org, team slug)

    @classmethod
    def from_settings(
        cls, *, anyone: bool, logins: list[str], orgs: list[str], teams: list[str]
    ) -> SignupRules:
        parsed = []
        for team in teams:
            org, _, slug = team.partition("/")
            if not org or not slug:
                raise ValueError(f"a sign-up team must be written org/team-slug, not {team!r}")
            parsed.append((org, slug))
        return cls(anyone, frozenset(login.lower() for login in logins), tuple(orgs), tuple(parsed))

    @property
    def needs_org_scope(self) -> bool:
        """`read:org` is asked for only when a rule needs it (minimal scopes)."""
        return bool(self.orgs or self.teams)

    async def allows(self, user: GitHubUser, *, token: str, github: GitHubApi) -> bool:
        """Checked at every sign-in, so leaving an org takes effect at the next one."""
        if self.anyone or user.login.lower() in self.logins:
            return True
        for org in self.orgs:
            if await github.is_org_member(token, org=org, login=user.login):
                return True
        for org, team in self.teams:
            if await github.is_team_member(token, org=org, team=team, login=user.login):
                return True
        return False

    def local_verdict(self, login: str) -> bool | None:
        """What the rules say without asking GitHub: True or False, or None when only org or
        team membership could still let the user in."""
        if self.anyone or login.lower() in self.logins:
            return True
        return None if self.needs_org_scope else False

    async def arecheck(self, login: str, *, membership: GitHubMembership | None) -> bool | None:
        """The rules again, after sign-in, without the user's token: logins here, orgs and teams
        with the operator's (``membership``), asked on the event loop without holding a thread.
        None: no verdict to trust (no membership token, or GitHub did not answer for an org or
        team that might let the user in)."""
        verdict = self.local_verdict(login)
        if verdict is not None:
            return verdict
        if membership is None:
            return None
        unknown = False
        for org in self.orgs:
            member = await membership.is_org_member(org=org, login=login)
            if member:
                return True
            unknown = unknown or member is None
        for org, team in self.teams:
            member = await membership.is_team_member(org=org, team=team, login=login)
            if member:
                return True
            unknown = unknown or member is None
        return None if unknown else False
