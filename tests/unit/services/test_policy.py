"""Policy checks read the tenant's raw JSON: a wrong type or value is a 422 naming the field, never
an AttributeError (a 500)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kuberth.exceptions import ForbiddenError, InvalidInputError
from kuberth.services.policy import (
    MAX_OBJECT_BYTES,
    WorkloadPolicy,
    check_deployment,
    check_size,
)

POLICY = WorkloadPolicy(
    apps_domain="apps.localhost",
    custom_domains={"acme.example": [7]},
    ingress_classes=("nginx",),
    service_types=("ClusterIP",),
)


def _ingress(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "web-alice.apps.localhost"}]}
        | spec,
    }


def _container(**fields: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "c", **fields}]}}}}


def test_a_good_ingress_gives_its_hosts() -> None:
    ingress = _ingress(tls=[{"hosts": ["web-alice.apps.localhost"]}])
    assert POLICY.check_ingress(ingress) == [
        ("spec.rules[0].host", "web-alice.apps.localhost"),
        ("spec.tls[0].hosts[0]", "web-alice.apps.localhost"),
    ]


@pytest.mark.parametrize(
    ("ingress", "field"),
    [
        ({"spec": []}, "spec"),
        ({"spec": "x"}, "spec"),
        ({"metadata": "x", "spec": {}}, "metadata"),
        ({"metadata": {"annotations": ["a"]}}, "metadata.annotations"),
        (_ingress(rules={"host": "x"}), "spec.rules"),
        (_ingress(rules=[]), "spec.rules"),
        (_ingress(rules=["x"]), "spec.rules[0]"),
        (_ingress(rules=[{"host": 5}]), "spec.rules[0].host"),
        (_ingress(rules=[{"host": ["x"]}]), "spec.rules[0].host"),
        (_ingress(rules=[{"http": {}}]), "spec.rules[0].host"),
        (_ingress(tls={"hosts": []}), "spec.tls"),
        (_ingress(tls=["x"]), "spec.tls[0]"),
        (_ingress(tls=[{"hosts": "x"}]), "spec.tls[0].hosts"),
        (_ingress(tls=[{"hosts": [5]}]), "spec.tls[0].hosts[0]"),
        (_ingress(ingressClassName="traefik"), "spec.ingressClassName"),
        (_ingress(defaultBackend={"service": {}}), "spec.defaultBackend"),
    ],
)
def test_bad_ingresses_name_the_field(ingress: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        POLICY.check_ingress(ingress)
    assert raised.value.field == field


def test_snippet_annotations_are_refused_whatever_the_key_type() -> None:
    ingress = _ingress()
    ingress["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/server-snippet": "x"}
    with pytest.raises(InvalidInputError, match="snippets"):
        POLICY.check_ingress(ingress)


@pytest.mark.parametrize(
    "host",
    [
        "WEB-alice.apps.localhost",
        "10.0.0.1",
        "web-alice.apps.localhost:80",
        "a..b-alice.apps.localhost",
        "a" * 64 + ".alice.apps.localhost",
        "web-alice.apps.localhost\n",
    ],
)
def test_hosts_that_are_no_dns_names_are_422_before_the_subdomain_rule(host: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        POLICY.check_host(host, field="f", namespace="alice", owner_id=1, taken=[])
    assert raised.value.field == "f"


def test_hosts_outside_the_subdomain_are_403_and_inside_are_fine() -> None:
    for host, owner_id in (
        ("example.com", 1),
        ("web-bob.apps.localhost", 1),  # another namespace's subdomain
        ("www.acme.example", 1),  # a verified domain, but someone else's
    ):
        with pytest.raises(ForbiddenError) as raised:
            POLICY.check_host(host, field="f", namespace="alice", owner_id=owner_id, taken=[])
        assert raised.value.field == "f", host
    POLICY.check_host(
        "web-alice.apps.localhost", field="f", namespace="alice", owner_id=1, taken=[]
    )
    POLICY.check_host("www.acme.example", field="f", namespace="alice", owner_id=7, taken=[])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("alice.apps.localhost", True),
        ("a.b.alice.apps.localhost", True),
        ("web-alice.apps.localhost", True),
        ("x-y-alice.apps.localhost", True),
        # Only a single label may end in -<ns>: what the kubectl policy allows too.
        ("web.foo-alice.apps.localhost", False),
        ("x.web-alice.apps.localhost", False),
        ("alice.web-bob.apps.localhost", False),
    ],
)
def test_the_api_and_the_kubectl_policy_agree_on_the_subdomain(host: str, allowed: bool) -> None:
    """The ingress policy's pattern (``ingress_policy``), as RE2 reads it, for namespace alice."""
    pattern = re.compile(r"^([a-z0-9-]+-|([a-z0-9-]+\.)*)alice\.apps\.localhost$")
    assert bool(pattern.match(host)) is allowed
    if allowed:
        POLICY.check_host(host, field="f", namespace="alice", owner_id=1, taken=[])
    else:
        with pytest.raises(ForbiddenError):
            POLICY.check_host(host, field="f", namespace="alice", owner_id=1, taken=[])


@pytest.mark.parametrize(
    ("service", "error", "field"),
    [
        ({"spec": []}, InvalidInputError, "spec"),
        ({"spec": {"type": 5}}, InvalidInputError, "spec.type"),
        ({"spec": {"type": ["NodePort"]}}, InvalidInputError, "spec.type"),
        ({"spec": {"type": "NodePort"}}, ForbiddenError, "spec.type"),
        ({"spec": {"externalIPs": ["1.2.3.4"]}}, ForbiddenError, "spec.externalIPs"),
    ],
)
def test_bad_services_name_the_field(
    service: dict[str, Any], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as raised:
        POLICY.check_service(service)
    assert getattr(raised.value, "field", None) == field


@pytest.mark.parametrize(
    "deployment",
    [
        {},
        {"spec": {"replicas": 0}},
        {"spec": {"replicas": 100}},
        {"spec": {"replicas": None}},  # a merge patch that resets it
        _container(resources={"requests": {"cpu": "500m", "memory": "1.5Gi"}}),
        _container(resources={"limits": {"cpu": 2, "memory": "1e9", "ephemeral-storage": "1G"}}),
    ],
)
def test_good_deployments_pass(deployment: dict[str, Any]) -> None:
    check_deployment(deployment)


@pytest.mark.parametrize(
    ("deployment", "field"),
    [
        ({"spec": []}, "spec"),
        ({"spec": {"replicas": -1}}, "spec.replicas"),
        ({"spec": {"replicas": 101}}, "spec.replicas"),
        ({"spec": {"replicas": 10**9}}, "spec.replicas"),
        ({"spec": {"replicas": "3"}}, "spec.replicas"),
        ({"spec": {"replicas": True}}, "spec.replicas"),
        ({"spec": {"replicas": 1.5}}, "spec.replicas"),
        ({"spec": {"template": []}}, "spec.template"),
        ({"spec": {"template": {"spec": {"containers": {}}}}}, "spec.template.spec.containers"),
        (
            {"spec": {"template": {"spec": {"containers": ["c"]}}}},
            "spec.template.spec.containers[0]",
        ),
        (_container(resources=[]), "spec.template.spec.containers[0].resources"),
        (
            _container(resources={"requests": ["cpu"]}),
            "spec.template.spec.containers[0].resources.requests",
        ),
        (
            _container(resources={"requests": {"cpu": "lots"}}),
            "spec.template.spec.containers[0].resources.requests[cpu]",
        ),
        (
            _container(resources={"limits": {"memory": "1 Gi"}}),
            "spec.template.spec.containers[0].resources.limits[memory]",
        ),
        (
            _container(resources={"limits": {"memory": True}}),
            "spec.template.spec.containers[0].resources.limits[memory]",
        ),
        (
            {
                "spec": {
                    "template": {
                        "spec": {"initContainers": [{"resources": {"limits": {"cpu": "x"}}}]}
                    }
                }
            },
            "spec.template.spec.initContainers[0].resources.limits[cpu]",
        ),
    ],
)
def test_bad_deployments_name_the_field(deployment: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        check_deployment(deployment)
    assert raised.value.field == field


def test_objects_too_large_for_etcd_are_refused() -> None:
    check_size({"data": "x" * (MAX_OBJECT_BYTES - 100)})
    with pytest.raises(InvalidInputError, match="bytes"):
        check_size({"data": "x" * MAX_OBJECT_BYTES})
