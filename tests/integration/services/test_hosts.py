"""Who holds a host is answered from the index of every Ingress, not a cluster-wide list."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client

from tests.integration.conftest import Tenant
from tests.integration.objects import kubernetes_gets_sent, native_ingress

APPS = "apps.localhost"
PATHS = [{"path": "/", "service": "web", "port": 80}]


def test_a_free_host_costs_no_read_and_a_held_one_one_narrow_read(
    tenants: Callable[[], Tenant], admin_api: client.ApiClient, namespace: str
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    # An Ingress written straight to Kubernetes, outside any tenant namespace, for a host in
    # Alice's subdomain: no claim row, so only the index knows it.
    held = f"held-{ns}.{APPS}"
    client.NetworkingV1Api(admin_api).create_namespaced_ingress(
        namespace, native_ingress("direct", held)
    )
    url = f"/api/v1/namespaces/{ns}/ingresses"
    first = http.post(url, json={"name": "first", "host": f"first-{ns}.{APPS}", "paths": PATHS})
    assert first.status_code == 201, first.text  # the index is listed once, here (it has both)

    before = kubernetes_gets_sent()
    free = http.post(url, json={"name": "free", "host": f"free-{ns}.{APPS}", "paths": PATHS})
    assert free.status_code == 201, free.text
    assert kubernetes_gets_sent() - before == 0

    before = kubernetes_gets_sent()
    taken = http.post(url, json={"name": "taken", "host": held, "paths": PATHS})
    assert taken.status_code == 409, taken.text
    assert taken.json()["field"] == "host"
    assert kubernetes_gets_sent() - before == 1  # one list narrowed to that Ingress confirms it
