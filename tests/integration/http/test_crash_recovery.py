"""Kuberth killed with SIGKILL in the middle of provisioning, then started again, converges.

Kuberth runs as a real `kuberth serve` process. An independent watch kills it the moment the new
namespace appears, which is between claiming the namespace and applying its baseline; the test
checks the baseline really was cut short, restarts Kuberth on the same database, and waits (with a
watch) for the start-up reconcile to complete it.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client, watch

from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer
from kuberth.services.builders.tenant import BASELINE_NAME, OWNER_ID
from tests.integration.processes import KuberthProcess, serve_environment
from tests.integration.signin import authorize, sign_in
from tests.integration.watching import wait_until
from tests.timing import eventually, scaled

BASELINE_KINDS = ("ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding")


@pytest.fixture
def kuberth_process(
    kubeconfig: Path,
    github: StandInServer,
    database_url: str,
    namespace: str,
    tmp_path: Path,
) -> Iterator[KuberthProcess]:
    environment = serve_environment(
        port=free_port(),
        kubeconfig=kubeconfig,
        github=github,
        database_url=database_url,
        secret_key=secrets.token_urlsafe(32),
        # A Lease of this test's own, short: the restarted Kuberth leads (and runs its start-up
        # reconcile) once the killed one's Lease has expired.
        kuberth_namespace=namespace,
        lease_duration="2",
        lease_renew_interval="0.5",
    )
    process = KuberthProcess(environment, tmp_path / "kuberth.log")
    yield process
    process.stop()


def kill_when_created(
    admin_api: client.ApiClient, name_of: Callable[[str], bool], kuberth: KuberthProcess
) -> threading.Thread:
    """Kills Kuberth the moment a namespace whose name satisfies ``name_of`` is added."""
    ready = threading.Event()

    def run() -> None:
        core = client.CoreV1Api(admin_api)
        resource_version = core.list_namespace(limit=1).metadata.resource_version
        ready.set()
        for event in watch.Watch().stream(
            core.list_namespace, resource_version=resource_version, timeout_seconds=60
        ):
            if event["type"] == "ADDED" and name_of(event["object"].metadata.name):
                kuberth.kill()
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(timeout=scaled(30)), "the namespace watch did not start"
    return thread


def baseline_pieces(admin_api: client.ApiClient, namespace: str) -> set[str]:
    """Which of the baseline's kinds exist in the namespace."""
    core = client.CoreV1Api(admin_api)
    found = set()
    for kind, read in (
        ("ResourceQuota", core.read_namespaced_resource_quota),
        ("LimitRange", core.read_namespaced_limit_range),
        ("NetworkPolicy", client.NetworkingV1Api(admin_api).read_namespaced_network_policy),
        ("RoleBinding", client.RbacAuthorizationV1Api(admin_api).read_namespaced_role_binding),
    ):
        with contextlib.suppress(client.ApiException):
            read(BASELINE_NAME, namespace)
            found.add(kind)
    return found


def wait_for_complete_baseline(admin_api: client.ApiClient, namespace: str) -> None:
    # The RoleBinding is applied last, so its arrival means the rest is there too; checked anyway.
    rbac = client.RbacAuthorizationV1Api(admin_api)
    wait_until(
        rbac.list_namespaced_role_binding, BASELINE_NAME, lambda _: True, namespace=namespace
    )
    assert baseline_pieces(admin_api, namespace) == set(BASELINE_KINDS)


def test_killed_during_sign_up_the_tenant_converges_after_restart(
    kuberth_process: KuberthProcess,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    core = client.CoreV1Api(admin_api)
    cut_short: set[str] | None = None
    for _ in range(5):  # the kill can land after the last step; then try with another user
        kuberth_process.start()
        github_id, login = new_id(), f"k{secrets.token_hex(4)}"
        with httpx.Client(base_url=kuberth_process.url, timeout=scaled(30)) as browser:
            callback = authorize(browser, github, login=login, user_id=github_id)
            killer = kill_when_created(
                admin_api, lambda name, login=login: name == login, kuberth_process
            )
            with contextlib.suppress(httpx.TransportError):
                browser.get(callback)
            killer.join(timeout=scaled(30))
        assert kuberth_process.process is not None
        assert kuberth_process.process.poll() is not None  # killed
        namespaces = core.list_namespace(label_selector=f"{OWNER_ID}={github_id}").items
        assert [ns.metadata.name for ns in namespaces] == [login]
        pieces = baseline_pieces(admin_api, login)
        if pieces != set(BASELINE_KINDS):
            cut_short = pieces
            break
    assert cut_short is not None, "the kill never landed mid-provisioning in 5 tries"
    print(f"sign-up killed with {sorted(cut_short) or 'nothing'} of the baseline applied")
    assert "RoleBinding" not in cut_short  # the tenant had no access while it was incomplete

    kuberth_process.start()  # same database; its start-up reconcile completes the baseline
    wait_for_complete_baseline(admin_api, login)
    with httpx.Client(base_url=kuberth_process.url, timeout=scaled(30)) as browser:
        assert sign_in(browser, github, login=login, user_id=github_id).status_code == 302
        listed = browser.get("/api/v1/namespaces")
        assert listed.status_code == 200, listed.text
        assert [ns["name"] for ns in listed.json()["items"]] == [login]


def test_killed_while_creating_a_namespace_it_is_recorded_and_completed_after_restart(
    kuberth_process: KuberthProcess,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    github_id, login = new_id(), f"k{secrets.token_hex(4)}"
    kuberth_process.start()
    with httpx.Client(base_url=kuberth_process.url, timeout=scaled(30)) as browser:
        assert sign_in(browser, github, login=login, user_id=github_id).status_code == 302
        created = browser.post("/api/v1/tokens", json={"name": "crash"})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    cut_short: tuple[str, set[str]] | None = None
    for attempt in range(5):
        if attempt:
            kuberth_process.start()
        name = f"{login}-{attempt}"
        killer = kill_when_created(
            admin_api, lambda created, name=name: created == name, kuberth_process
        )
        with contextlib.suppress(httpx.TransportError):
            httpx.post(
                f"{kuberth_process.url}/api/v1/namespaces",
                json={"name": name},
                headers=bearer,
                timeout=scaled(30),
            )
        killer.join(timeout=scaled(30))
        pieces = baseline_pieces(admin_api, name)
        if pieces != set(BASELINE_KINDS):
            cut_short = (name, pieces)
            break
    assert cut_short is not None, "the kill never landed mid-provisioning in 5 tries"
    name, pieces = cut_short
    print(f"namespace creation killed with {sorted(pieces) or 'nothing'} of the baseline applied")

    kuberth_process.start()
    wait_for_complete_baseline(admin_api, name)

    # Rolled forward, not lost: the owner sees the namespace the dead request was making.
    def listed_to_owner() -> bool:
        listed = httpx.get(
            f"{kuberth_process.url}/api/v1/namespaces", headers=bearer, timeout=scaled(30)
        )
        assert listed.status_code == 200, listed.text
        return name in [ns["name"] for ns in listed.json()["items"]]

    # Recording follows the baseline within the same pass; a few reads at most.
    eventually(listed_to_owner, within=30, what="the namespace recorded for its owner")
    own = httpx.get(
        f"{kuberth_process.url}/api/v1/namespaces/{name}", headers=bearer, timeout=scaled(30)
    )
    assert own.status_code == 200, own.text
