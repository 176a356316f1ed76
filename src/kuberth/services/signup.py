"""Who may sign up: anyone, listed logins, or members of listed orgs/teams. Nothing set: nobody."""

from __future__ import annotations

from dataclasses import dataclass

from kuberth.storage.github import GitHubApi, GitHubUser


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
