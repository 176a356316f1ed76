"""An app's Service and Ingress are owned by its Deployment: deleting the Deployment, through
Kuberth or straight in Kubernetes, lets the garbage collector take the rest. Apps made before
the references are read, changed and deleted all the same. On SQLite and PostgreSQL (an app's
Ingress holds its host through the database)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kuberth.services.builders import workloads as build
from kuberth.services.specs import AppSpec
from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import KubernetesApi
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.resources import DeploymentStorage, IngressStorage, ServiceStorage
from tests.integration.conftest import Tenant, _signed_in_tenants
from tests.integration.objects import native_ingress
from tests.integration.watching import wait_deleted

APPS = "apps.localhost"

References = list[tuple[str, str, str, bool]]


@pytest.fixture
def tenants(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: Any,
    new_id: Callable[[], int],
    database_url: str,
) -> Iterator[Callable[[], Tenant]]:
    """Signed-in tenants on one Kuberth server, its database of each kind."""
    with (
        kuberth_server(database_url=database_url) as url,
        _signed_in_tenants(url, github, new_id) as make,
    ):
        yield make


def _references(obj: Any) -> References:
    """(kind, name, uid, controller) of each owner reference."""
    return [
        (ref.kind, ref.name, ref.uid, bool(ref.controller))
        for ref in obj.metadata.owner_references or []
    ]


def _exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status != 404:
            raise
        return False
    return True


def test_the_service_and_ingress_are_owned_by_the_deployment_after_create_and_change(
    tenants: Callable[[], Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    created = http.post(f"/api/v1/namespaces/{ns}/apps", json={"name": "shop", "image": "nginx"})
    assert created.status_code == 201, created.text
    apps, core = client.AppsV1Api(admin_api), client.CoreV1Api(admin_api)
    net = client.NetworkingV1Api(admin_api)
    uid = str(apps.read_namespaced_deployment("shop", ns).metadata.uid)
    owned: References = [("Deployment", "shop", uid, False)]
    assert _references(core.read_namespaced_service("shop", ns)) == owned
    assert _references(net.read_namespaced_ingress("shop", ns)) == owned
    assert _references(apps.read_namespaced_deployment("shop", ns)) == []

    changed = http.patch(
        f"/api/v1/namespaces/{ns}/apps/shop",
        json={"image": "nginx:1.28", "port": 9090, "host": f"moved-{ns}.{APPS}"},
    )
    assert changed.status_code == 200, changed.text
    service, ingress = (
        core.read_namespaced_service("shop", ns),
        net.read_namespaced_ingress("shop", ns),
    )
    assert service.spec.ports[0].target_port == 9090  # both were written, and kept their owner
    assert ingress.spec.rules[0].host == f"moved-{ns}.{APPS}"
    assert _references(service) == owned
    assert _references(ingress) == owned


def test_deleting_the_deployment_in_kubernetes_takes_the_service_and_the_ingress(
    tenants: Callable[[], Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    created = http.post(f"/api/v1/namespaces/{ns}/apps", json={"name": "shop", "image": "nginx"})
    assert created.status_code == 201, created.text
    core, net = client.CoreV1Api(admin_api), client.NetworkingV1Api(admin_api)

    # As `kubectl delete deployment shop` does: in the background, the collector takes the rest.
    client.AppsV1Api(admin_api).delete_namespaced_deployment(
        "shop", ns, propagation_policy="Background"
    )
    wait_deleted(core.read_namespaced_service, core.list_namespaced_service, "shop", namespace=ns)
    wait_deleted(net.read_namespaced_ingress, net.list_namespaced_ingress, "shop", namespace=ns)
    assert http.get(f"/api/v1/namespaces/{ns}/apps/shop").status_code == 404
    assert http.get(f"/api/v1/namespaces/{ns}/apps").json()["items"] == []


def _made_the_old_way(kubeconfig: Path, namespace: str, name: str) -> None:
    """An app's three parts as Kuberth made them before owner references: each created on its
    own, through the storage of its kind."""
    api = KubernetesApi(make_api_client(Settings(kubeconfig=kubeconfig)), timeout=10, retry_after=1)
    try:
        parts = build.app(
            AppSpec(name=name, image="nginx:1.27"),
            namespace=namespace,
            host=f"{name}-{namespace}.{APPS}",
            ingress_class="nginx",
        )
        for storage, manifest in zip(
            (DeploymentStorage, ServiceStorage, IngressStorage), parts, strict=True
        ):
            storage(api).create(manifest, namespace=namespace)
    finally:
        api.close()


def test_an_app_made_before_owner_references_is_read_changed_and_deleted_whole(
    tenants: Callable[[], Tenant], admin_api: client.ApiClient, kubeconfig: Path
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    apps, core = client.AppsV1Api(admin_api), client.CoreV1Api(admin_api)
    net = client.NetworkingV1Api(admin_api)
    _made_the_old_way(kubeconfig, ns, "old")
    _made_the_old_way(kubeconfig, ns, "bare")
    assert _references(core.read_namespaced_service("bare", ns)) == []

    read = http.get(f"/api/v1/namespaces/{ns}/apps/old")
    assert read.status_code == 200, read.text
    assert read.json()["url"] == f"http://old-{ns}.{APPS}/"
    assert [a["name"] for a in http.get(f"/api/v1/namespaces/{ns}/apps").json()["items"]] == [
        "bare",
        "old",
    ]

    # A change writes every part it alters, and gives the Service and the Ingress their owner.
    changed = http.patch(f"/api/v1/namespaces/{ns}/apps/old", json={"replicas": 2})
    assert changed.status_code == 200, changed.text
    assert apps.read_namespaced_deployment("old", ns).spec.replicas == 2
    uid = str(apps.read_namespaced_deployment("old", ns).metadata.uid)
    owned: References = [("Deployment", "old", uid, False)]
    assert _references(core.read_namespaced_service("old", ns)) == owned
    assert _references(net.read_namespaced_ingress("old", ns)) == owned

    # One without any reference is deleted part by part: nothing is left when DELETE answers.
    assert http.delete(f"/api/v1/namespaces/{ns}/apps/bare").status_code == 204
    assert not _exists(lambda: apps.read_namespaced_deployment("bare", ns))
    assert not _exists(lambda: core.read_namespaced_service("bare", ns))
    assert not _exists(lambda: net.read_namespaced_ingress("bare", ns))
    assert http.delete(f"/api/v1/namespaces/{ns}/apps/old").status_code == 204
    assert not _exists(lambda: core.read_namespaced_service("old", ns))
    assert not _exists(lambda: net.read_namespaced_ingress("old", ns))


def test_an_ingress_that_cannot_be_made_leaves_nothing_of_the_app(
    tenants: Callable[[], Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    net = client.NetworkingV1Api(admin_api)
    theirs = native_ingress("shop", f"theirs-{ns}.{APPS}")
    net.create_namespaced_ingress(ns, theirs)

    failed = http.post(f"/api/v1/namespaces/{ns}/apps", json={"name": "shop", "image": "nginx"})
    assert failed.status_code == 409, failed.text
    assert failed.json()["message"].startswith("creating the ingress:"), failed.json()
    # The Deployment and the Service it owned are deleted at once, not left to the collector.
    assert not _exists(lambda: client.AppsV1Api(admin_api).read_namespaced_deployment("shop", ns))
    assert not _exists(lambda: client.CoreV1Api(admin_api).read_namespaced_service("shop", ns))
    kept = net.read_namespaced_ingress("shop", ns)  # not the app's: untouched
    assert kept.spec.rules[0].host == f"theirs-{ns}.{APPS}"
    assert _references(kept) == []
    # Its host was released: an Ingress of another name takes it.
    free = http.post(
        f"/api/v1/namespaces/{ns}/ingresses",
        json={"name": "web", "host": f"shop-{ns}.{APPS}", "paths": [{"service": "x", "port": 80}]},
    )
    assert free.status_code == 201, free.text
