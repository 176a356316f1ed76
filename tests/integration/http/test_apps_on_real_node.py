"""An app created through Kuberth really answers at its host: Traefik on the real node routes
``<app>-<ns>.apps.localhost`` from the host's apps port to the tenant's pod.

Runs against the suite's plane when it has a real node (with Traefik on it); skipped otherwise.
Requests go to 127.0.0.1 with the app's Host header, as a browser resolving ``*.localhost`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import httpx
import pytest
from kubernetes import client

from kuberth.cluster.build import Builder
from kuberth.cluster.node import ingress
from kuberth.cluster.node.runtime import RealNode
from kuberth.cluster.versions import Versions
from kuberth.devtools.github import StandInServer
from kuberth.settings import Settings
from tests.integration.conftest import ON_REAL_NODE, Tenant, _signed_in_tenants
from tests.timing import eventually, scaled

APPS = "apps.localhost"

#: Times a refused connection is tried again, each a new one, once refused.
RECHECKS = 2

#: Kuberth as `kuberth dev` configures it for the real node: pods there, Ingresses to Traefik.
WITH_TRAEFIK: dict[str, object] = {
    **ON_REAL_NODE,
    "ingress_controller_namespace": ingress.NAMESPACE,
    "ingress_classes": [ingress.INGRESS_CLASS],
}


@pytest.fixture(scope="module")
def web_image() -> str:
    builder = Builder(cache_dir=Settings().cache_dir, versions=Versions(), progress=print)
    return builder.ensure_node().images["web"].reference


@pytest.fixture
def apps_port(real_node: RealNode) -> int:
    port = real_node.apps_port()
    if port is None:
        pytest.skip("the real node runs no Ingress controller")
    return port


@contextlib.contextmanager
def tenants_of(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    **overrides: object,
) -> Iterator[Callable[[], Tenant]]:
    """Signed-in tenants on a Kuberth server with these settings."""
    with kuberth_server(**overrides) as url, _signed_in_tenants(url, github, new_id) as make:
        yield make


def fetch(apps_port: int, host: str, timeout: float = 10) -> httpx.Response:
    """A fresh connection to the host's apps port, for ``host`` (no pooled connection: a
    NetworkPolicy does not cut an established one)."""
    return httpx.get(f"http://127.0.0.1:{apps_port}/", headers={"Host": host}, timeout=timeout)


def the_page(apps_port: int, host: str, pod_name: str) -> str | None:
    with contextlib.suppress(httpx.HTTPError):
        response = fetch(apps_port, host)
        if response.status_code == 200 and f"HOSTNAME={pod_name}" in response.text:
            return response.text
    return None


def create_web_app(tenant: Tenant, image: str, admin_api: client.ApiClient) -> tuple[str, str]:
    """Alice's app ``web`` of the demo web image; its host and its (Ready) pod's name."""
    ns = tenant.namespace
    created = tenant.http.post(
        f"/api/v1/namespaces/{ns}/apps", json={"name": "web", "image": image, "port": 8080}
    )
    assert created.status_code == 201, created.text
    host = f"web-{ns}.{APPS}"
    assert created.json()["url"] == f"http://{host}/"
    core = client.CoreV1Api(admin_api)

    def ready_pod() -> str | None:
        for pod in core.list_namespaced_pod(ns, label_selector="app=web").items:
            conditions = (pod.status and pod.status.conditions) or []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                assert pod.spec is not None
                assert pod.metadata is not None
                assert pod.spec.node_name == "kuberth-node-0", "the app runs on the real node"
                return str(pod.metadata.name)
        return None

    return host, eventually(ready_pod, within=60, what="the app's pod Ready on the real node")


def test_an_app_answers_at_its_host_and_no_other_tenant_can_take_it(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
    web_image: str,
    apps_port: int,
) -> None:
    with tenants_of(kuberth_server, github, new_id, **WITH_TRAEFIK) as tenants:
        alice, bob = tenants(), tenants()
        host, pod_name = create_web_app(alice, web_image, admin_api)
        ingress_class = (
            client.NetworkingV1Api(admin_api)
            .read_namespaced_ingress("web", alice.namespace)
            .spec.ingress_class_name
        )
        assert ingress_class == ingress.INGRESS_CLASS

        page = eventually(
            lambda: the_page(apps_port, host, pod_name),
            within=30,
            what=f"http://{host}:{apps_port}/ served by {pod_name}",
        )
        assert "<h1>Hello from pod" in page
        # Another host of alice's subdomain that no Ingress has: Traefik's own 404.
        assert fetch(apps_port, f"nothing-{alice.namespace}.{APPS}").status_code == 404

        # Bob cannot take alice's host, by an app or an Ingress of his own.
        taken = bob.http.post(
            f"/api/v1/namespaces/{bob.namespace}/apps",
            json={"name": "web", "image": web_image, "port": 8080, "host": host},
        )
        assert taken.status_code == 403, taken.text
        assert "outside your subdomain" in taken.json()["message"]
        taken = bob.http.post(
            f"/api/v1/namespaces/{bob.namespace}/ingresses",
            json={"name": "steal", "host": host, "paths": [{"service": "web", "port": 80}]},
        )
        assert taken.status_code == 403, taken.text
        assert "outside your subdomain" in taken.json()["message"]
        assert the_page(apps_port, host, pod_name), "alice's host still reaches alice's pod"


def test_the_tenant_policy_blocks_a_controller_outside_the_allowed_namespace(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
    web_image: str,
    apps_port: int,
    real_node: RealNode,
) -> None:
    if not any(c.name == "kube-router" for c in real_node.status()):
        pytest.skip("no NetworkPolicy enforcer (kube-router) runs on the real node")
    wrong = {**WITH_TRAEFIK, "ingress_controller_namespace": "not-the-controller"}
    with tenants_of(kuberth_server, github, new_id, **wrong) as tenants:
        alice = tenants()
        host, pod_name = create_web_app(alice, web_image, admin_api)

        # Traefik routes the host (its router exists) but its connection to the pod is dropped
        # (by the node's firewall gate until kube-router has synced the pod, docs/design.md) or
        # refused by alice's policy: a 502 or 504 from Traefik, never alice's page, from the
        # pod's first moment. Until Traefik has the pod among its servers it answers 404 or 503:
        # wait for a verdict, then check it again on new connections.
        def verdict() -> httpx.Response | None:
            response = fetch(apps_port, host, timeout=scaled(90))
            assert f"HOSTNAME={pod_name}" not in response.text, "the policy let Traefik in"
            return response if response.status_code in (502, 504) else None

        eventually(verdict, within=120, what="Traefik's connection to the pod refused or dropped")
        for _ in range(RECHECKS):
            assert verdict() is not None, "Traefik's connection to the pod got through"
