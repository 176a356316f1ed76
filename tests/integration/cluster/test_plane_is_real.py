"""The local control plane is a real Kubernetes: controllers, scheduler, kwok, tokens, RBAC."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.conftest import TEST_LABEL
from tests.integration.watching import wait_deleted, wait_until


def test_namespace_deletion_completes(admin_api: client.ApiClient) -> None:
    """The namespace controller empties a namespace and removes it, finalizer and all."""
    core = client.CoreV1Api(admin_api)
    name = f"kt-deletion-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": name, "labels": {TEST_LABEL: "true"}}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "content"}, "data": {"a": "b"}})

    core.delete_namespace(name)
    terminating = core.read_namespace(name)
    assert terminating.status.phase == "Terminating"
    assert "kubernetes" in (terminating.spec.finalizers or [])

    wait_deleted(lambda n: core.read_namespace(n), core.list_namespace, name, timeout=90)
    with pytest.raises(ApiException) as gone:
        core.read_namespace(name)
    assert gone.value.status == 404


def test_deployment_reaches_two_ready_replicas(admin_api: client.ApiClient, namespace: str) -> None:
    """Deployment -> ReplicaSet -> Pods (controller manager), bound (scheduler), Running (kwok)."""
    apps = client.AppsV1Api(admin_api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
    )
    ready = wait_until(
        apps.list_namespaced_deployment,
        "web",
        lambda d: (d.status.ready_replicas or 0) == 2,
        namespace=namespace,
    )
    assert ready.status.available_replicas == 2

    pods = client.CoreV1Api(admin_api).list_namespaced_pod(namespace, label_selector="app=web")
    assert len(pods.items) == 2
    for pod in pods.items:
        assert pod.spec.node_name == "kwok-node-0"
        assert pod.status.phase == "Running"


def test_service_gets_a_cluster_ip(admin_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(admin_api)
    created = core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    assert created.spec.type == "ClusterIP"
    assert ipaddress.ip_address(created.spec.cluster_ip) in ipaddress.ip_network("10.96.0.0/16")
    assert core.read_namespaced_service("web", namespace).spec.cluster_ip == created.spec.cluster_ip


def test_ingress_is_stored_validated_and_read_back(
    admin_api: client.ApiClient, namespace: str
) -> None:
    networking = client.NetworkingV1Api(admin_api)
    rule = {
        "host": "web.apps.example.test",
        "http": {
            "paths": [
                {
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                }
            ]
        },
    }
    networking.create_namespaced_ingress(
        namespace, {"metadata": {"name": "web"}, "spec": {"rules": [rule]}}
    )

    stored = networking.read_namespaced_ingress("web", namespace)
    assert stored.spec.rules[0].host == "web.apps.example.test"
    assert stored.spec.rules[0].http.paths[0].backend.service.port.number == 80

    # The API server validates what it stores: a host that is no DNS name is refused.
    bad = {**rule, "host": "Not_A_Host"}
    with pytest.raises(ApiException) as refused:
        networking.create_namespaced_ingress(
            namespace, {"metadata": {"name": "bad"}, "spec": {"rules": [bad]}}
        )
    assert refused.value.status == 422
    assert "spec.rules[0].host" in (refused.value.body or "")


@pytest.fixture
def token_client(
    admin_api: client.ApiClient, namespace: str
) -> Iterator[tuple[client.ApiClient, str]]:
    """A client that authenticates with a TokenRequest token of a ServiceAccount named `reader`."""
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    token = core.create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    configuration = client.Configuration(
        host=admin_api.configuration.host,
        api_key={"BearerToken": token},
        api_key_prefix={"BearerToken": "Bearer"},
    )
    configuration.ssl_ca_cert = admin_api.configuration.ssl_ca_cert
    api = client.ApiClient(configuration)
    yield api, f"system:serviceaccount:{namespace}:reader"
    api.close()


def test_token_request_mints_a_usable_token(
    token_client: tuple[client.ApiClient, str],
) -> None:
    api, username = token_client
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )
    assert review.status.user_info.username == username
    assert "system:serviceaccounts" in review.status.user_info.groups


def test_rbac_limited_identity_is_forbidden_outside_its_namespace(
    admin_api: client.ApiClient, namespace: str, token_client: tuple[client.ApiClient, str]
) -> None:
    rbac = client.RbacAuthorizationV1Api(admin_api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    api, _ = token_client
    core = client.CoreV1Api(api)

    own = core.list_namespaced_config_map(namespace)
    assert any(cm.metadata.name == "kube-root-ca.crt" for cm in own.items)

    for forbidden in (
        lambda: core.list_namespaced_config_map("kube-system"),
        lambda: core.list_namespaced_secret(namespace),
        lambda: core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}}),
        lambda: core.list_namespace(),
    ):
        with pytest.raises(ApiException) as denied:
            forbidden()
        assert denied.value.status == 403
