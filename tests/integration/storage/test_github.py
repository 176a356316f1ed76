"""What Kuberth accepts from GitHub as an identity: strictly a GitHub user, or a clean 502.

The stand-in answers ``/user`` with a body of the test's choosing, as a misbehaving GitHub (or
GitHub Enterprise, or something posing as either) could.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import pytest
from kubernetes import client

from kuberth.devtools.github import StandInServer
from kuberth.services.builders.tenant import OWNER_ID
from tests.integration.conftest import KuberthFactory
from tests.integration.signin import sign_in

GOOD_LOGIN = "octo-cat1"

#: (case, body of /user): none of them may sign anyone in, or answer a 500.
UNTRUSTWORTHY = [
    ("id-true", json.dumps({"id": True, "login": GOOD_LOGIN})),
    ("id-float", json.dumps({"id": 4242.7, "login": GOOD_LOGIN})),
    ("id-whole-float", json.dumps({"id": 4242.0, "login": GOOD_LOGIN})),
    ("id-string", json.dumps({"id": "12345", "login": GOOD_LOGIN})),
    ("id-missing", json.dumps({"login": GOOD_LOGIN})),
    ("id-null", json.dumps({"id": None, "login": GOOD_LOGIN})),
    ("id-text", json.dumps({"id": "abc", "login": GOOD_LOGIN})),
    ("id-zero", json.dumps({"id": 0, "login": GOOD_LOGIN})),
    ("id-negative", json.dumps({"id": -7, "login": GOOD_LOGIN})),
    ("login-missing", json.dumps({"id": 4242})),
    ("login-number", json.dumps({"id": 4242, "login": 12})),
    ("login-double-hyphen", json.dumps({"id": 4242, "login": "octo--cat"})),
    ("login-leading-hyphen", json.dumps({"id": 4242, "login": "-octo"})),
    ("login-too-long", json.dumps({"id": 4242, "login": "a" * 40})),
    ("login-slash", json.dumps({"id": 4242, "login": "../kube-system"})),
    ("not-json", "<html>GitHub is down</html>"),
    ("json-list", json.dumps([{"id": 4242, "login": GOOD_LOGIN}])),
    ("json-string", json.dumps("octocat")),
]


@pytest.mark.parametrize("body", [b for _, b in UNTRUSTWORTHY], ids=[c for c, _ in UNTRUSTWORTHY])
def test_an_answer_that_is_not_a_github_user_is_a_502_naming_github_and_creates_nothing(
    body: str,
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    github_id = new_id()
    github.state.user_answers[github_id] = body.encode()
    try:
        with kuberth() as http:
            answer = sign_in(http, github, login=f"t{secrets.token_hex(4)}", user_id=github_id)
            assert answer.status_code == 502, answer.text
            assert "GitHub" in answer.text
            assert http.get("/api/v1/me").status_code == 401  # nobody signed in
    finally:
        del github.state.user_answers[github_id]
    # Nobody was recorded under any id the body could be read as, and no namespace was made.
    core = client.CoreV1Api(admin_api)
    for owner in (github_id, 4242, 12345, 1):
        assert core.list_namespace(label_selector=f"{OWNER_ID}={owner}").items == []


def test_a_well_formed_answer_signs_in_as_exactly_that_user(
    kuberth: KuberthFactory, github: StandInServer, new_id: Callable[[], int]
) -> None:
    """The strictness refuses nothing GitHub really sends: extra fields, a null name."""
    github_id, login = new_id(), f"Ok-{secrets.token_hex(3)}"
    github.state.user_answers[github_id] = json.dumps(
        {"id": github_id, "login": login, "name": None, "type": "User", "site_admin": False}
    ).encode()
    try:
        with kuberth() as http:
            assert sign_in(http, github, login=login, user_id=github_id).status_code == 302
            me = http.get("/api/v1/me")
            assert me.status_code == 200, me.text
            assert (me.json()["github_id"], me.json()["login"]) == (github_id, login)
    finally:
        del github.state.user_answers[github_id]
