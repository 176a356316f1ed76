"""The sign-up rules checked again without the user's token: which answers are a verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from kuberth.services.signup import SignupRules
from kuberth.storage.github import GitHubMembership


@dataclass
class FakeMembership:
    """GitHub's answers by (org or org/team, login): True, False, or None (no answer)."""

    answers: dict[tuple[str, str], bool | None] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def is_org_member(self, *, org: str, login: str) -> bool | None:
        self.asked.append((org, login))
        return self.answers.get((org, login), False)

    def is_team_member(self, *, org: str, team: str, login: str) -> bool | None:
        self.asked.append((f"{org}/{team}", login))
        return self.answers.get((f"{org}/{team}", login), False)

    async def ais_org_member(self, *, org: str, login: str) -> bool | None:
        return self.is_org_member(org=org, login=login)

    async def ais_team_member(self, *, org: str, team: str, login: str) -> bool | None:
        return self.is_team_member(org=org, team=team, login=login)


def rules(**kwargs: object) -> SignupRules:
    values: dict[str, object] = {"anyone": False, "logins": [], "orgs": [], "teams": []}
    return SignupRules.from_settings(**{**values, **kwargs})


def recheck(r: SignupRules, login: str, fake: FakeMembership | None) -> bool | None:
    membership: GitHubMembership | None = fake  # type: ignore[assignment]
    return r.recheck(login, membership=membership)


def test_login_rules_are_a_verdict_without_github() -> None:
    only = rules(logins=["Alice"])
    fake = FakeMembership()
    assert recheck(only, "alice", fake) is True
    assert recheck(only, "bob", fake) is False
    assert recheck(rules(anyone=True), "bob", fake) is True
    assert recheck(rules(), "bob", fake) is False  # nothing set: nobody
    assert fake.asked == []


def test_membership_is_asked_only_when_a_login_rule_does_not_decide() -> None:
    r = rules(logins=["alice"], orgs=["acme"], teams=["acme/ops"])
    fake = FakeMembership({("acme/ops", "bob"): True})
    assert recheck(r, "alice", fake) is True
    assert recheck(r, "bob", fake) is True
    assert recheck(r, "carol", fake) is False
    assert fake.asked == [
        ("acme", "bob"),
        ("acme/ops", "bob"),
        ("acme", "carol"),
        ("acme/ops", "carol"),
    ]


def test_no_answer_or_no_membership_token_is_no_verdict() -> None:
    r = rules(orgs=["acme", "other"])
    assert recheck(r, "bob", None) is None  # no token: checked at sign-in only
    assert recheck(r, "bob", FakeMembership({("acme", "bob"): None})) is None
    # One org says yes: that is enough, whatever another did not answer.
    assert recheck(r, "bob", FakeMembership({("acme", "bob"): None, ("other", "bob"): True}))


def test_the_event_loops_recheck_gives_the_same_verdicts_asking_the_same_questions() -> None:
    r = rules(logins=["alice"], orgs=["acme", "other"], teams=["acme/ops"])
    cases: list[tuple[str, dict[tuple[str, str], bool | None] | None]] = [
        ("alice", {}),
        ("bob", {("acme/ops", "bob"): True}),
        ("carol", {}),
        ("dave", {("acme", "dave"): None}),
        ("erin", None),
    ]
    for login, answers in cases:
        fake, afake = (
            (None, None) if answers is None else (FakeMembership(answers), FakeMembership(answers))
        )
        membership: GitHubMembership | None = afake  # type: ignore[assignment]
        verdict = anyio.run(lambda: r.arecheck(login, membership=membership))  # noqa: B023
        assert verdict == recheck(r, login, fake), login
        assert (afake.asked if afake else []) == (fake.asked if fake else []), login
