"""Deployments, Services and Ingresses through the API, checked against what Kubernetes stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import Tenant
from tests.integration.objects import kubernetes_gets_sent
from tests.integration.watching import wait_until

APPS = "apps.localhost"


def _deployment(namespace: str, name: str = "web", image: str = "nginx:1.27") -> dict[str, Any]:
    """The native form of what the concise {name, image, replicas: 2, port: 8080} builds."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ]
                },
            },
        },
    }


def test_deployment_crud_and_status(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    apps = client.AppsV1Api(admin_api)

    created = http.post(
        f"/api/v1/namespaces/{ns}/deployments",
        json={
            "name": "web",
            "image": "nginx:1.27",
            "replicas": 2,
            "port": 8080,
            "env": {"MODE": "prod"},
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["replicas"]["desired"] == 2
    stored = apps.read_namespaced_deployment("web", ns)
    assert stored.spec.template.spec.containers[0].env[0].value == "prod"

    wait_until(
        apps.list_namespaced_deployment,
        "web",
        lambda d: (d.status.ready_replicas or 0) == 2,
        namespace=ns,
    )
    plain = http.get(f"/api/v1/namespaces/{ns}/deployments/web").json()
    assert plain["replicas"]["ready"] == 2
    assert plain["pods"] is None  # related objects only when asked for
    assert plain["events"] is None
    detail = http.get(
        f"/api/v1/namespaces/{ns}/deployments/web", params={"include": ["pods", "events"]}
    ).json()
    assert len(detail["pods"]) == 2
    assert {p["phase"] for p in detail["pods"]} == {"Running"}
    assert any(e["reason"] == "ScalingReplicaSet" for e in detail["events"])
    assert [
        d["name"] for d in http.get(f"/api/v1/namespaces/{ns}/deployments").json()["items"]
    ] == ["web"]

    full = http.get(f"/api/v1/namespaces/{ns}/deployments/web", params={"full": "true"}).json()
    current = full["object"]
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    replaced = http.put(f"/api/v1/namespaces/{ns}/deployments/web", json=current)
    assert replaced.status_code == 200, replaced.text
    assert (
        apps.read_namespaced_deployment("web", ns).spec.template.spec.containers[0].image
        == "nginx:1.28"
    )

    stale = http.put(
        f"/api/v1/namespaces/{ns}/deployments/web", json=current
    )  # old resourceVersion
    assert stale.status_code == 409
    stale_patch = http.patch(
        f"/api/v1/namespaces/{ns}/deployments/web",
        json={
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "spec": {"replicas": 5},
        },
    )
    assert stale_patch.status_code == 409
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2  # no lost update

    patched = http.patch(
        f"/api/v1/namespaces/{ns}/deployments/web", json={"metadata": {"labels": {"tier": "f"}}}
    )
    assert patched.status_code == 200
    assert apps.read_namespaced_deployment("web", ns).metadata.labels["tier"] == "f"

    assert http.delete(f"/api/v1/namespaces/{ns}/deployments/web").status_code == 204
    assert http.get(f"/api/v1/namespaces/{ns}/deployments/web").status_code == 404
    assert http.delete(f"/api/v1/namespaces/{ns}/deployments/web").status_code == 404


def test_concise_and_native_forms_make_the_same_deployment(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    concise_response = http.post(
        f"/api/v1/namespaces/{ns}/deployments",
        json={"name": "one", "image": "nginx:1.27", "replicas": 2, "port": 8080},
        params={"full": "true"},
    )
    native_response = http.post(
        f"/api/v1/namespaces/{ns}/deployments", json=_deployment(ns, "two"), params={"full": "true"}
    )
    assert concise_response.status_code == 201, concise_response.text
    assert native_response.status_code == 201, native_response.text
    concise, native = concise_response.json()["object"], native_response.json()["object"]

    def shape(obj: dict[str, Any], name: str) -> str:
        text = str({"spec": obj["spec"], "labels": obj["metadata"]["labels"]})
        return text.replace(f"'{name}'", "'X'")

    assert shape(concise, "one") == shape(native, "two")


def test_bodies_are_checked_before_kubernetes(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    url = f"/api/v1/namespaces/{alice.namespace}/deployments"
    cases = [
        ({"name": "Bad_Name", "image": "x"}, "name"),
        ({"name": "ok", "image": "x", "replicas": -1}, "replicas"),
        ({"name": "ok", "image": "x", "port": 70000}, "port"),
        ({"name": "ok", "image": "x", "env": {"1BAD": "v"}}, "env.0.name"),
        ({"name": "ok", "image": "x", "colour": "red"}, "colour"),
        (
            {**_deployment("someone-else"), "metadata": {"name": "w", "namespace": "someone-else"}},
            "metadata.namespace",
        ),
        ({**_deployment(alice.namespace), "kind": "Service"}, "kind"),
    ]
    for body, field in cases:
        response = alice.http.post(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, response.json()


def test_kubernetes_validation_errors_come_back_with_the_field_path(
    tenants: Callable[..., Tenant],
) -> None:
    alice = tenants()
    bad = _deployment(alice.namespace)
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}  # selector does not match
    response = alice.http.post(f"/api/v1/namespaces/{alice.namespace}/deployments", json=bad)
    assert response.status_code == 422
    assert response.json()["field"].startswith("spec.template.metadata.labels")


def test_scale_restart_and_rollout(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    created = http.post(
        f"/api/v1/namespaces/{ns}/deployments", json={"name": "web", "image": "nginx:1.27"}
    )
    assert created.status_code == 201, created.text
    scaled = http.post(f"/api/v1/namespaces/{ns}/deployments/web/scale", json={"replicas": 3})
    assert scaled.status_code == 200
    done = http.get(f"/api/v1/namespaces/{ns}/deployments/web/rollout", params={"timeout": 60})
    assert done.json()["outcome"] == "complete"
    assert done.json()["deployment"]["replicas"]["ready"] == 3

    before = {p.metadata.name for p in client.CoreV1Api(admin_api).list_namespaced_pod(ns).items}
    restarted = http.post(f"/api/v1/namespaces/{ns}/deployments/web/restart")
    assert restarted.status_code == 200
    annotations = (
        client.AppsV1Api(admin_api)
        .read_namespaced_deployment("web", ns)
        .spec.template.metadata.annotations
    )
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    done = http.get(f"/api/v1/namespaces/{ns}/deployments/web/rollout", params={"timeout": 90})
    assert done.json()["outcome"] == "complete"
    after = {
        p.metadata.name
        for p in client.CoreV1Api(admin_api).list_namespaced_pod(ns).items
        if p.metadata.deletion_timestamp is None
    }
    assert len(after) == 3
    assert not after & before  # every pod was replaced


def test_service_crud_and_rules(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    created = http.post(
        f"/api/v1/namespaces/{ns}/services",
        json={"name": "web", "app": "web", "ports": [{"port": 80, "target_port": 8080}]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["cluster_ip"].startswith("10.96.")
    assert (
        client.CoreV1Api(admin_api).read_namespaced_service("web", ns).spec.ports[0].target_port
        == 8080
    )
    web = f"/api/v1/namespaces/{ns}/services/web"
    assert http.get(web, params={"include": "endpoints"}).json()["endpoints"] == []
    assert http.get(web).json()["endpoints"] is None

    node_port = http.post(
        f"/api/v1/namespaces/{ns}/services",
        json={"name": "np", "app": "web", "ports": [{"port": 80}], "type": "NodePort"},
    )
    assert node_port.status_code == 403
    assert node_port.json()["field"] == "spec.type"
    external = http.post(
        f"/api/v1/namespaces/{ns}/services",
        json={
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ext"},
            "spec": {"ports": [{"port": 80}], "externalIPs": ["1.2.3.4"]},
        },
    )
    assert external.status_code == 403, external.text
    assert external.json()["field"] == "spec.externalIPs"
    sneaky = http.patch(
        f"/api/v1/namespaces/{ns}/services/web", json={"spec": {"type": "LoadBalancer"}}
    )
    assert sneaky.status_code == 403, sneaky.text
    assert sneaky.json()["field"] == "spec.type"
    assert client.CoreV1Api(admin_api).read_namespaced_service("web", ns).spec.type == "ClusterIP"
    assert http.delete(f"/api/v1/namespaces/{ns}/services/web").status_code == 204


def test_ingress_crud_and_host_rules(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice, bob = tenants(), tenants()
    ns, http = alice.namespace, alice.http
    url = f"/api/v1/namespaces/{ns}/ingresses"
    host = f"web-{ns}.{APPS}"
    created = http.post(
        url,
        json={"name": "web", "host": host, "paths": [{"path": "/", "service": "web", "port": 80}]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["hosts"] == [host]
    assert created.json()["ingress_class"] == "nginx"
    stored = client.NetworkingV1Api(admin_api).read_namespaced_ingress("web", ns)
    assert stored.spec.rules[0].host == host

    def attempt(body: dict[str, Any], tenant: Tenant = alice) -> tuple[int, Any]:
        response = tenant.http.post(f"/api/v1/namespaces/{tenant.namespace}/ingresses", json=body)
        return response.status_code, response.json().get("field")

    path = [{"path": "/", "service": "web", "port": 80}]
    assert attempt({"name": "a", "host": f"a.{ns}.{APPS}", "paths": path})[0] == 201
    assert attempt({"name": "b", "host": f"b-{bob.namespace}.{APPS}", "paths": path}) == (
        403,
        "spec.rules[0].host",
    )
    assert attempt({"name": "c", "host": "example.com", "paths": path}) == (
        403,
        "spec.rules[0].host",
    )
    assert attempt({"name": "d", "host": f"*.{ns}.{APPS}", "paths": path})[0] == 422
    native = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "e"}}
    catch_all = {
        **native,
        "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": []}}]},
    }
    assert attempt(catch_all) == (422, "spec.rules[0].host")
    default_backend = {
        **native,
        "spec": {"defaultBackend": {"service": {"name": "w", "port": {"number": 80}}}},
    }
    assert attempt(default_backend) == (422, "spec.defaultBackend")
    snippet = {
        **native,
        "metadata": {
            "name": "f",
            "annotations": {"nginx.ingress.kubernetes.io/server-snippet": "x"},
        },
        "spec": {"rules": [{"host": f"f-{ns}.{APPS}"}]},
    }
    assert attempt(snippet) == (422, "metadata.annotations")
    other_class = {"name": "g", "host": f"g-{ns}.{APPS}", "paths": path, "ingress_class": "traefik"}
    assert attempt(other_class) == (422, "spec.ingressClassName")

    # The same host in a second Ingress of the same tenant is a conflict too.
    assert attempt({"name": "dup", "host": host, "paths": path})[0] == 409
    # Changing the host moves the claim; the old one is free again.
    moved = http.patch(f"{url}/web", json={"spec": {"rules": [{"host": f"new-{ns}.{APPS}"}]}})
    assert moved.status_code == 200, moved.text
    assert attempt({"name": "dup", "host": host, "paths": path})[0] == 201
    assert http.delete(f"{url}/web").status_code == 204


def test_a_host_held_by_another_tenant_is_409_and_the_holder_is_untouched(
    kuberth_server: Callable[..., Any],
    github: Any,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
) -> None:
    import httpx

    from tests.integration.signin import sign_in

    alice_id, bob_id = new_id(), new_id()
    alice_ns, bob_ns = f"a{alice_id}", f"b{bob_id}"
    shared = f"shop.{alice_ns}.{APPS}"
    path = [{"path": "/", "service": "web", "port": 80}]
    networking = client.NetworkingV1Api(admin_api)
    # Bob may use custom domains of his own; an operator lists one that (wrongly) covers Alice's
    # subdomain, so Bob passes the subdomain rule and only the host's holder can stop him.
    domains = {f"{alice_ns}.{APPS}": [bob_id]}
    with (
        kuberth_server(custom_domains=domains) as url,
        httpx.Client(base_url=url, timeout=120) as alice,
        httpx.Client(base_url=url, timeout=120) as bob,
    ):
        assert sign_in(alice, github, login=alice_ns, user_id=alice_id).status_code == 302
        assert sign_in(bob, github, login=bob_ns, user_id=bob_id).status_code == 302
        held = alice.post(
            f"/api/v1/namespaces/{alice_ns}/ingresses",
            json={"name": "shop", "host": shared, "paths": path},
        )
        assert held.status_code == 201, held.text
        before = networking.read_namespaced_ingress("shop", alice_ns)

        # The domain does let Bob in: a free host under it is his to take.
        free = bob.post(
            f"/api/v1/namespaces/{bob_ns}/ingresses",
            json={"name": "free", "host": f"free.{alice_ns}.{APPS}", "paths": path},
        )
        assert free.status_code == 201, free.text

        response = bob.post(
            f"/api/v1/namespaces/{bob_ns}/ingresses",
            json={"name": "shop", "host": shared, "paths": path},
        )
        assert response.status_code == 409, response.text
        assert "another tenant" in response.json()["message"]
        after = networking.read_namespaced_ingress("shop", alice_ns)
        assert after.metadata.resource_version == before.metadata.resource_version
        assert after.spec.rules[0].host == shared
        with pytest.raises(client.ApiException) as missing:
            networking.read_namespaced_ingress("shop", bob_ns)
        assert missing.value.status == 404


def test_custom_domains_and_host_collisions_across_tenants(
    kuberth_server: Callable[..., Any],
    github: Any,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
) -> None:
    import httpx

    from tests.integration.signin import sign_in

    alice_id, bob_id = new_id(), new_id()
    domains = {"shared.example": [alice_id, bob_id]}
    path = [{"path": "/", "service": "web", "port": 80}]
    with (
        kuberth_server(custom_domains=domains) as url,
        httpx.Client(base_url=url, timeout=120) as alice,
        httpx.Client(base_url=url, timeout=120) as bob,
    ):
        alice_ns, bob_ns = f"a{alice_id}", f"b{bob_id}"
        assert sign_in(alice, github, login=alice_ns, user_id=alice_id).status_code == 302
        assert sign_in(bob, github, login=bob_ns, user_id=bob_id).status_code == 302
        first = alice.post(
            f"/api/v1/namespaces/{alice_ns}/ingresses",
            json={"name": "w", "host": "www.shared.example", "paths": path},
        )
        assert first.status_code == 201, first.text
        second = bob.post(
            f"/api/v1/namespaces/{bob_ns}/ingresses",
            json={"name": "w", "host": "www.shared.example", "paths": path},
        )
        assert second.status_code == 409, second.text
        assert "another tenant" in second.json()["message"]
        assert (
            client.NetworkingV1Api(admin_api)
            .read_namespaced_ingress("w", alice_ns)
            .spec.rules[0]
            .host
            == "www.shared.example"
        )
        with pytest.raises(client.ApiException) as missing:
            client.NetworkingV1Api(admin_api).read_namespaced_ingress("w", bob_ns)
        assert missing.value.status == 404


def test_quota_refusals_are_403_with_kubernetes_message(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    url = f"/api/v1/namespaces/{alice.namespace}/services"
    for i in range(20):  # the default quota allows 20 services
        assert (
            alice.http.post(
                url, json={"name": f"s{i}", "app": "x", "ports": [{"port": 80}]}
            ).status_code
            == 201
        )
    refused = alice.http.post(url, json={"name": "s20", "app": "x", "ports": [{"port": 80}]})
    assert refused.status_code == 403
    assert "exceeded quota" in refused.json()["message"]


def test_writes_into_a_terminating_namespace_are_409(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    name = f"{alice.login}-going"
    created = alice.http.post("/api/v1/namespaces", json={"name": name})
    assert created.status_code == 201, created.text
    core, rbac = client.CoreV1Api(admin_api), client.RbacAuthorizationV1Api(admin_api)
    hold = {"metadata": {"finalizers": ["kuberth.dev/test-hold"]}}
    # Keep the namespace terminating, and the tenant's RoleBinding in it, for the test's length.
    core.create_namespaced_config_map(name, {"metadata": {"name": "held", **hold["metadata"]}})
    rbac.patch_namespaced_role_binding("kuberth-tenant", name, hold)
    core.delete_namespace(name)
    try:
        response = alice.http.post(
            f"/api/v1/namespaces/{name}/deployments", json={"name": "w", "image": "x"}
        )
        assert response.status_code == 409, response.text
        assert "being terminated" in response.json()["message"]
    finally:
        release = {"metadata": {"finalizers": None}}
        rbac.patch_namespaced_role_binding("kuberth-tenant", name, release)
        core.patch_namespaced_config_map("held", name, release)


def test_get_of_one_object_costs_one_kubernetes_call_and_one_more_per_include(
    tenants: Callable[[], Tenant],
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    assert (
        http.post(
            f"/api/v1/namespaces/{ns}/deployments", json={"name": "web", "image": "nginx:1.27"}
        ).status_code
        == 201
    )
    service = {"name": "web", "app": "web", "ports": [{"port": 80}]}
    assert http.post(f"/api/v1/namespaces/{ns}/services", json=service).status_code == 201
    cost = {}
    for label, path, include in (
        ("deployment", "deployments/web", []),
        ("deployment+pods", "deployments/web", ["pods"]),
        ("deployment+pods+events", "deployments/web", ["pods", "events"]),
        ("service", "services/web", []),
        ("service+endpoints", "services/web", ["endpoints"]),
    ):
        before = kubernetes_gets_sent()
        response = http.get(f"/api/v1/namespaces/{ns}/{path}", params={"include": include})
        assert response.status_code == 200, response.text
        cost[label] = kubernetes_gets_sent() - before
    assert cost == {
        "deployment": 1,
        "deployment+pods": 2,
        "deployment+pods+events": 3,
        "service": 1,
        "service+endpoints": 2,
    }


@pytest.mark.parametrize(
    ("path", "include"),
    [("deployments/web", "endpoints"), ("services/web", "pods"), ("ingresses/web", "events")],
)
def test_include_of_what_a_kind_does_not_have_is_a_422_naming_include(
    tenants: Callable[[], Tenant], path: str, include: str
) -> None:
    alice = tenants()
    response = alice.http.get(
        f"/api/v1/namespaces/{alice.namespace}/{path}", params={"include": include}
    )
    assert response.status_code == 422
    assert response.json()["field"].startswith("include"), response.json()
    assert response.json()["message"].startswith("include"), response.json()
