"""The sign-up rules after sign-in: a user they no longer allow loses access everywhere (API
token, session, kubeconfig, running apps) within the re-check interval, and gets it back by
signing in once they pass again; GitHub failing keeps the last verdict."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from sqlalchemy import create_engine, text

from kuberth.cluster.build import Binaries
from kuberth.devtools.github import StandInServer
from kuberth.services.suspension import REPLICAS_BEFORE_REVOKE
from tests.integration.signin import sign_in
from tests.timing import eventually, scaled

IMAGE = "registry.example/shop:1.0"
#: Only the start-up pass: the sign-up sweep runs on its own pace in between.
ONCE = 3600


@dataclass
class Access:
    """Everything a tenant signed in with: a browser, an API token, a kubeconfig, an app."""

    url: str
    browser: httpx.Client
    token: str
    kubeconfig: Path
    login: str
    github_id: int

    def api(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, timeout=scaled(60)) as http:
            return http.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def kubectl(binaries: Binaries) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    def run(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(binaries.kubectl), "--kubeconfig", str(kubeconfig), "get", "deployments"],
            capture_output=True,
            text=True,
            check=False,
            timeout=scaled(60),
        )

    return run


def signed_up(
    browser: httpx.Client,
    github: StandInServer,
    tmp_path: Path,
    *,
    login: str,
    github_id: int,
    **how: object,
) -> Access:
    """Sign in with ``browser`` (kept open across restarts) and make one of everything."""
    assert sign_in(browser, github, login=login, user_id=github_id, **how).status_code == 302
    created = browser.post("/api/v1/tokens", json={"name": "ci"})
    assert created.status_code == 201, created.text
    downloaded = browser.get(f"/api/v1/namespaces/{login}/kubeconfig")
    assert downloaded.status_code == 200, downloaded.text
    kubeconfig = tmp_path / f"{login}.kubeconfig"
    kubeconfig.write_text(downloaded.text)
    app = {"name": "web", "image": IMAGE, "replicas": 2}
    made = browser.post(f"/api/v1/namespaces/{login}/deployments", json=app)
    assert made.status_code == 201, made.text
    return Access(
        str(browser.base_url), browser, created.json()["token"], kubeconfig, login, github_id
    )


def _refused(result: subprocess.CompletedProcess[str]) -> bool:
    said = result.stderr.lower()
    return result.returncode != 0 and ("forbidden" in said or "unauthorized" in said)


def _lost_everything(
    access: Access,
    kubectl: Callable[[Path], subprocess.CompletedProcess[str]],
    apps: client.AppsV1Api,
    *,
    within: float,
) -> None:
    # Kubeconfigs never pass through Kuberth: first, so only the sweep can have done it.
    eventually(lambda: _refused(kubectl(access.kubeconfig)), within=within, what="kubectl refused")

    def stopped() -> bool:
        # The kubeconfig goes first and the apps next (AdminService.awithdraw): a moment apart.
        web = apps.read_namespaced_deployment("web", access.login)
        remembered = (web.metadata.annotations or {}).get(REPLICAS_BEFORE_REVOKE)
        return (web.spec.replicas, remembered) == (0, "2")

    eventually(stopped, within=within, what="the apps scaled to zero, their count remembered")
    eventually(
        lambda: access.browser.get("/api/v1/me").status_code == 401,
        within=within,
        what="the session ended",
    )
    eventually(
        lambda: access.api("GET", "/api/v1/me").status_code == 403,
        within=within,
        what="the API token refused",
    )
    create = access.api(
        "POST",
        f"/api/v1/namespaces/{access.login}/deployments",
        json={"name": "more", "image": IMAGE},
    )
    assert create.status_code == 403, create.text


def test_a_user_the_narrowed_login_rules_leave_out_loses_access_at_restart(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    database_url: str,
    admin_api: client.ApiClient,
    kubectl: Callable[[Path], subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    apps = client.AppsV1Api(admin_api)
    login, operator_login = f"t{secrets.token_hex(4)}", f"o{secrets.token_hex(4)}"
    tenant_id, operator_id = new_id(), new_id()
    common = {
        "database_url": database_url,
        "secret_key": secrets.token_urlsafe(32),  # the session cookie outlives the restarts
        "signup_anyone": False,
        "admin_github_ids": [operator_id],
        "reconcile_interval": ONCE,
    }
    with httpx.Client(timeout=scaled(120)) as browser:
        with kuberth_server(signup_logins=[login, operator_login], **common) as url:
            browser.base_url = httpx.URL(url)
            access = signed_up(browser, github, tmp_path, login=login, github_id=tenant_id)
            assert kubectl(access.kubeconfig).returncode == 0
        # The operator narrows the rules: a restart with new settings.
        with (
            kuberth_server(signup_logins=[operator_login], **common) as url,
            httpx.Client(base_url=url, timeout=scaled(120)) as operator,
        ):
            access.url = url
            browser.base_url = httpx.URL(url)
            _lost_everything(access, kubectl, apps, within=30)
            signed = sign_in(operator, github, login=operator_login, user_id=operator_id)
            assert signed.status_code == 302
            listed = operator.get("/api/v1/admin/tenants", params={"limit": 500}).json()
            mine = next(t for t in listed["items"] if t["github_id"] == tenant_id)
            assert mine["revoked_at"]
            assert mine["revoked_reason"] == "signup-rules"
            audit = operator.get("/api/v1/audit", params={"limit": 1000}).json()["items"]
            assert any(
                (e["actor_login"], e["action"], e["name"], e["result"], e["detail"])
                == ("kuberth", "revoke", str(tenant_id), "ok", "sign-up rules")
                for e in audit
            ), audit
            with httpx.Client(base_url=url, timeout=scaled(120)) as again:
                refused = sign_in(again, github, login=login, user_id=tenant_id)
                assert refused.status_code == 403, refused.text

        # Let in again: signing in gives back access and apps (the token works again too).
        with kuberth_server(signup_logins=[login, operator_login], **common) as url:
            access.url = url
            browser.base_url = httpx.URL(url)
            assert sign_in(browser, github, login=login, user_id=tenant_id).status_code == 302
            assert access.api("GET", "/api/v1/me").status_code == 200
            web = apps.read_namespaced_deployment("web", login)
            assert web.spec.replicas == 2
            assert REPLICAS_BEFORE_REVOKE not in (web.metadata.annotations or {})
            assert kubectl(access.kubeconfig).returncode != 0  # its service account is gone
            made = browser.post(
                f"/api/v1/namespaces/{login}/deployments", json={"name": "more", "image": IMAGE}
            )
            assert made.status_code == 201, made.text


def test_a_user_who_left_the_org_loses_access_within_the_recheck_interval(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
    kubectl: Callable[[Path], subprocess.CompletedProcess[str]],
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    """Asked of GitHub with the operator's membership token; while GitHub fails, the last verdict
    stands (and is asked again), and nobody is locked out for it."""
    apps = client.AppsV1Api(admin_api)
    org = f"org{secrets.token_hex(3)}"
    login, tenant_id = f"t{secrets.token_hex(4)}", new_id()
    interval = 2.0
    with (
        kuberth_server(
            signup_anyone=False,
            signup_orgs=[org],
            signup_membership_token=github.state.membership_token(),
            signup_recheck_interval=interval,
            reconcile_interval=ONCE,
        ) as url,
        httpx.Client(base_url=url, timeout=scaled(120)) as browser,
    ):
        access = signed_up(browser, github, tmp_path, login=login, github_id=tenant_id, orgs=[org])
        database = create_engine(sqlite_url)

        def checked_at() -> str:
            with database.connect() as connection:
                return str(
                    connection.scalar(
                        text("SELECT signup_checked_at FROM users WHERE id = :id"),
                        {"id": tenant_id},
                    )
                )

        # GitHub down: checks happen (the verdict's time moves on), access stays.
        github.state.outage = True
        try:
            seen = checked_at()
            eventually(lambda: checked_at() != seen, within=10 * interval, what="a re-check")
            seen = checked_at()
            eventually(lambda: checked_at() != seen, within=10 * interval, what="another")
            assert access.api("GET", "/api/v1/me").status_code == 200
            assert kubectl(access.kubeconfig).returncode == 0
        finally:
            github.state.outage = False

        github.state.leave(login, org=org)
        _lost_everything(access, kubectl, apps, within=10 * interval)

        # Back in the org: a sign-in gives it all back.
        signed = sign_in(browser, github, login=login, user_id=tenant_id, orgs=[org])
        assert signed.status_code == 302
        assert access.api("GET", "/api/v1/me").status_code == 200
        assert apps.read_namespaced_deployment("web", login).spec.replicas == 2
        database.dispose()
