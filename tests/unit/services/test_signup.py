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

    async def is_org_member(self, *, org: str, login: str) -> bool | None:
        self.asked.append((org, login))
        return self.answers.get((org, login), False)

    async def is_team_member(self, *, org: str, team: str, login: str) -> bool | None:
        self.asked.append((f"{org}/{team}", login))
        return self.answers.get((f"{org}/{team}", login), False)


def rules(**kwargs: object) -> SignupRules:
    values: dict[str, object] = {"anyone": False, "logins": [], "orgs": [], "teams": []}
    return SignupRules.from_settings(**{**values, **kwargs})


def recheck(r: SignupRules, login: str, fake: FakeMembership | None) -> bool | None:
    """:meth:`SignupRules.arecheck`'s verdict, run to its end on an event loop of its own."""
    membership: GitHubMembership | None = fake  # type: ignore[assignment]
    return anyio.run(lambda: r.arecheck(login, membership=membership))


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


def test_each_verdict_asks_the_orgs_then_the_teams_until_one_lets_the_user_in() -> None:
    r = rules(logins=["alice"], orgs=["acme", "other"], teams=["acme/ops"])
    in_order = ["acme", "other", "acme/ops"]
    cases: list[tuple[str, dict[tuple[str, str], bool | None] | None, bool | None, int]] = [
        ("alice", {}, True, 0),  # a login rule: GitHub is not asked
        ("bob", {("acme/ops", "bob"): True}, True, 3),
        ("carol", {}, False, 3),
        ("dave", {("acme", "dave"): None}, None, 3),  # one org did not answer: no verdict
        ("erin", None, None, 0),  # no membership token
    ]
    for login, answers, expected, questions in cases:
        fake = None if answers is None else FakeMembership(answers)
        assert recheck(r, login, fake) is expected, login
        asked = fake.asked if fake else []
        assert asked == [(who, login) for who in in_order[:questions]], login
