"""Signing in with GitHub through the real OAuth flow, and the personal namespace it provisions."""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from kubernetes import client

from kuberth.devtools.github import StandInServer
from kuberth.services.naming import is_reserved
from tests.integration.conftest import KuberthFactory
from tests.integration.signin import authorize, sign_in
from tests.timing import scaled


def _login() -> str:
    return f"user{secrets.token_hex(3)}"


def _owned(admin_api: client.ApiClient, github_id: int) -> list[str]:
    namespaces = client.CoreV1Api(admin_api).list_namespace(
        label_selector=f"kuberth.dev/owner-id={github_id}"
    )
    return sorted(ns.metadata.name for ns in namespaces.items)


def test_first_sign_in_provisions_a_complete_namespace(
    kuberth: KuberthFactory,
    github: StandInServer,
    database_url: str,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    login, user_id = _login(), new_id()
    with kuberth(database_url=database_url) as http:
        signed_in = sign_in(http, github, login=login.title(), user_id=user_id)
        assert signed_in.status_code == 302
        assert signed_in.headers["location"] == "/dashboard"
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie

        me = http.get("/api/v1/me").json()
        assert me["github_id"] == user_id
        assert me["login"] == login.title()
        assert [n["name"] for n in me["namespaces"]] == [login]  # lower-cased login
        assert me["namespaces"][0]["personal"] is True

    core = client.CoreV1Api(admin_api)
    ns = core.read_namespace(login)
    assert ns.metadata.labels["app.kubernetes.io/managed-by"] == "kuberth"
    assert ns.metadata.labels["kuberth.dev/owner-id"] == str(user_id)
    assert ns.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert core.read_namespaced_resource_quota("kuberth-tenant", login).spec.hard["pods"] == "50"
    assert (
        core.read_namespaced_limit_range("kuberth-tenant", login).spec.limits[0].type == "Container"
    )
    policy = client.NetworkingV1Api(admin_api).read_namespaced_network_policy(
        "kuberth-tenant", login
    )
    assert policy.spec.policy_types == ["Ingress", "Egress"]
    binding = client.RbacAuthorizationV1Api(admin_api).read_namespaced_role_binding(
        "kuberth-tenant", login
    )
    assert binding.role_ref.name == "kuberth:tenant"
    assert binding.subjects[0].name == f"kuberth:{user_id}"
    managers = {entry.manager for entry in binding.metadata.managed_fields}
    assert managers == {"kuberth"}


def test_signing_in_again_repairs_a_missing_piece(
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    login, user_id = _login(), new_id()
    rbac = client.RbacAuthorizationV1Api(admin_api)
    with kuberth() as http:
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        rbac.delete_namespaced_role_binding("kuberth-tenant", login)
        client.CoreV1Api(admin_api).patch_namespace(
            login, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
        )
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
    assert (
        rbac.read_namespaced_role_binding("kuberth-tenant", login).subjects[0].name
        == f"kuberth:{user_id}"
    )
    labels = client.CoreV1Api(admin_api).read_namespace(login).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("tamper", ["missing", "mismatched", "replayed"])
def test_bad_state_is_refused_and_creates_nothing(
    tamper: str,
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    login, user_id = _login(), new_id()
    with kuberth() as http:
        callback = authorize(http, github, login=login, user_id=user_id)
        path, query = callback.split("?", 1)
        params = dict(parse_qsl(query))
        if tamper == "missing":
            del params["state"]
        elif tamper == "mismatched":
            params["state"] = secrets.token_urlsafe(16)
        else:
            assert http.get(callback).status_code == 302  # the real one, once
            http.cookies.clear()
        response = http.get(path, params=params)
        assert response.status_code == 400
        assert response.json()["error"] == "bad_request"
        assert http.get("/api/v1/me").status_code == 401  # nobody is signed in by it
    # Nothing was created by the refused callback: no namespace at all, or (replayed) only the
    # one the real callback made.
    assert _owned(admin_api, user_id) == ([login] if tamper == "replayed" else [])


def test_a_replayed_code_with_the_old_cookie_is_refused(
    kuberth: KuberthFactory, github: StandInServer, new_id: Callable[[], int]
) -> None:
    """A signed cookie cannot forget the state, but GitHub's code works only once."""
    with kuberth() as http:
        callback = authorize(http, github, login=_login(), user_id=new_id())
        before = dict(http.cookies)
        assert http.get(callback).status_code == 302
        http.cookies.clear()
        http.cookies.update(before)
        replay = http.get(callback)
    assert replay.status_code == 400


def test_org_rule_refuses_outsiders_and_admits_members(
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    outsider, member = new_id(), new_id()
    with kuberth(signup_anyone=False, signup_orgs=["acme"], signup_teams=["other/ops"]) as http:
        start = http.get("/auth/github/login")
        assert "read:org" in dict(parse_qsl(urlsplit(start.headers["location"]).query))["scope"]

        refused = sign_in(http, github, login=_login(), user_id=outsider, orgs=["not-acme"])
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
        assert http.get("/api/v1/me").status_code == 401

        assert (
            sign_in(http, github, login=_login(), user_id=member, orgs=["acme"]).status_code == 302
        )
        assert (
            sign_in(http, github, login=_login(), user_id=new_id(), teams=["other/ops"]).status_code
            == 302
        )
    assert _owned(admin_api, outsider) == []
    assert len(_owned(admin_api, member)) == 1


def test_no_rule_means_nobody_and_scopes_stay_minimal(
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    user_id = new_id()
    with kuberth(signup_anyone=False) as http:
        start = http.get("/auth/github/login")
        assert dict(parse_qsl(urlsplit(start.headers["location"]).query))["scope"] == "read:user"
        assert sign_in(http, github, login=_login(), user_id=user_id).status_code == 403
    assert _owned(admin_api, user_id) == []


def test_logins_differing_in_case_are_one_account(
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    login, user_id = _login(), new_id()
    with kuberth() as http:
        assert sign_in(http, github, login=login.upper(), user_id=user_id).status_code == 302
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        me = http.get("/api/v1/me").json()
    assert me["login"] == login
    assert [n["name"] for n in me["namespaces"]] == [login]
    assert _owned(admin_api, user_id) == [login]


def test_a_renamed_login_keeps_its_namespace_and_a_newcomer_gets_another(
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    old_login, renamed = _login(), _login()
    first, newcomer = new_id(), new_id()
    with kuberth() as http:
        assert sign_in(http, github, login=old_login, user_id=first).status_code == 302
        assert sign_in(http, github, login=renamed, user_id=first).status_code == 302
        me = http.get("/api/v1/me").json()
        assert me["login"] == renamed
        assert [n["name"] for n in me["namespaces"]] == [old_login]

        http.cookies.clear()
        assert sign_in(http, github, login=old_login, user_id=newcomer).status_code == 302
        theirs = http.get("/api/v1/me").json()["namespaces"][0]["name"]
        assert theirs == f"{old_login}--{newcomer}"
        assert http.get(f"/api/v1/namespaces/{old_login}").status_code == 404
        assert http.delete(f"/api/v1/namespaces/{old_login}").status_code == 404
    assert _owned(admin_api, first) == [old_login]


@pytest.mark.parametrize("login", ["default", "kube-system", "Kube-Public", "kuberth"])
def test_reserved_logins_get_a_safe_namespace_and_leave_the_reserved_one_alone(
    login: str,
    kuberth: KuberthFactory,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    core = client.CoreV1Api(admin_api)
    reserved = login.lower()
    before = core.read_namespace(reserved) if reserved != "kuberth" else None
    user_id = new_id()
    with kuberth() as http:
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        name = http.get("/api/v1/me").json()["namespaces"][0]["name"]
    assert name.endswith(f"--{user_id}")
    assert not is_reserved(name, extra=["kuberth"])
    assert _owned(admin_api, user_id) == [name]
    if before is not None:
        after = core.read_namespace(reserved)
        assert after.metadata.resource_version == before.metadata.resource_version


def test_concurrent_first_sign_ins_make_one_user_and_one_namespace(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    database_url: str,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    login, user_id = _login(), new_id()
    with kuberth_server(database_url=database_url) as url:
        # httpx's default 5 s is too short for a storm on a busy machine.
        browsers = [httpx.Client(base_url=url, timeout=scaled(60)) for _ in range(10)]
        callbacks = [authorize(b, github, login=login, user_id=user_id) for b in browsers]
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(
                pool.map(lambda pair: pair[0].get(pair[1]), zip(browsers, callbacks, strict=True))
            )
        assert [a.status_code for a in answers] == [302] * 10
        names = {
            tuple(n["name"] for n in b.get("/api/v1/me").json()["namespaces"]) for b in browsers
        }
        for browser in browsers:
            browser.close()
    assert names == {(login,)}
    assert _owned(admin_api, user_id) == [login]
