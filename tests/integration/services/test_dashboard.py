"""The dashboard's read from watch-fed copies: the database decides whose namespaces are looked up,
and the copies follow Kubernetes (changes made behind Kuberth's back included).

The read is async (on the server's event loop); these tests drive it on one loop of their own, to
which the database's async connections then belong, and poll it between runs.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from kuberth.http.services import Services, build_services
from kuberth.services.builders.workloads import KUBERTH_APP
from kuberth.services.principal import Principal
from kuberth.settings import Settings
from kuberth.storage.github import GitHubUser
from tests.timing import eventually


@pytest.fixture
def loop() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def services(kuberth_settings: Callable[..., Settings], loop: asyncio.Runner) -> Iterator[Services]:
    built = build_services(kuberth_settings())
    built.provisioner.ensure_cluster_objects()
    yield built
    _close(built, loop)


def _close(services: Services, loop: asyncio.Runner) -> None:
    for informer in services.informers:
        informer.stop()
    services.kubernetes.close()
    services.database.engine.dispose()
    loop.run(services.database.adispose())


def _deployment(name: str) -> client.V1Deployment:
    labels = {KUBERTH_APP: name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=0,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="a", image="nginx")]),
            ),
        ),
    )


def _apps(loop: asyncio.Runner, services: Services, principal: Principal) -> dict[str, list[str]]:
    namespaces = loop.run(services.dashboard.namespaces(principal))
    return {ns.name: [app["name"] for app in ns.apps] for ns in namespaces}


def _followed(check: Callable[[], bool]) -> None:
    """How fast is a benchmark's figure (bench/scale.py); here, that the dashboard follows."""
    eventually(check, within=10, what="the dashboard followed the change", interval=0.01)


def test_each_tenant_sees_its_own_apps_only_and_follows_changes(
    services: Services,
    loop: asyncio.Runner,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    alice, alices = services.users.sign_in(GitHubUser(new_id(), f"a{secrets.token_hex(3)}", None))
    bob, bobs = services.users.sign_in(GitHubUser(new_id(), f"b{secrets.token_hex(3)}", None))
    apps = client.AppsV1Api(admin_api)
    apps.create_namespaced_deployment(bobs, _deployment("shop"))

    assert _apps(loop, services, alice) == {alices: []}
    _followed(lambda: _apps(loop, services, bob) == {bobs: ["shop"]})
    # Bob's namespace is never looked up for her.
    assert _apps(loop, services, alice) == {alices: []}

    apps.delete_namespaced_deployment("shop", bobs)
    _followed(lambda: _apps(loop, services, bob) == {bobs: []})


def test_an_operator_dashboard_lists_only_its_own_namespaces(
    kuberth_settings: Callable[..., Settings], loop: asyncio.Runner, new_id: Callable[[], int]
) -> None:
    operator_id = new_id()
    services = build_services(kuberth_settings(admin_github_ids=[operator_id]))
    try:
        services.users.sign_in(GitHubUser(new_id(), f"t{secrets.token_hex(3)}", None))
        operator, own = services.users.sign_in(
            GitHubUser(operator_id, f"o{secrets.token_hex(3)}", None)
        )
        assert operator.is_admin
        assert [ns.name for ns in loop.run(services.dashboard.namespaces(operator))] == [own]
    finally:
        _close(services, loop)
