"""The tenant baseline manifests, against reviewed golden JSON."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from kuberth.services.builders import tenant

GOLDEN = Path(__file__).parent / "golden"
POLICY = tenant.TenantPolicy(
    quota={"pods": "50", "requests.cpu": "4"},
    default_requests={"cpu": "100m", "memory": "128Mi"},
    default_limits={"cpu": "500m", "memory": "512Mi"},
    pod_security_level="restricted",
    ingress_controller_namespace="ingress-nginx",
    egress="internet",
    egress_blocked_cidrs=["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"],
)


#: Set to exactly ``1`` to rewrite the golden files; a run that rewrites one fails, so the mode
#: cannot be left on by accident and a rewritten golden is always looked at before it is committed.
UPDATE = os.environ.get("KUBERTH_UPDATE_GOLDEN") == "1"


def _check(name: str, value: object) -> None:
    """Compare with the reviewed golden; in update mode, rewrite a differing one and fail."""
    path = GOLDEN / f"{name}.json"
    rendered = json.dumps(value, indent=2, sort_keys=True) + "\n"
    current = path.read_text() if path.exists() else None
    if rendered == current:
        return
    if UPDATE:
        path.write_text(rendered)
        raise AssertionError(
            f"rewrote {path}: review the diff, then run again without KUBERTH_UPDATE_GOLDEN"
        )
    assert current is not None, f"{path} is missing; create it with KUBERTH_UPDATE_GOLDEN=1"
    assert rendered == current, f"{name} differs from {path}; review, then regenerate"


def test_namespace() -> None:
    _check(
        "namespace",
        tenant.namespace("alice", github_id=42, login="Alice", personal=True, policy=POLICY),
    )


def test_baseline() -> None:
    _check("baseline", tenant.baseline("alice", github_id=42, policy=POLICY))


def test_tenant_cluster_role() -> None:
    _check("tenant-cluster-role", tenant.tenant_cluster_role())


def test_the_role_binding_comes_last() -> None:
    kinds = [m["kind"] for m in tenant.baseline("alice", github_id=42, policy=POLICY)]
    assert kinds[-1] == "RoleBinding"


def _by_kind() -> dict[str, dict[str, Any]]:
    manifests = tenant.baseline("alice", github_id=42, policy=POLICY)
    by_kind = {m["kind"]: m for m in manifests}
    assert len(by_kind) == len(manifests) == 4, [m["kind"] for m in manifests]
    return by_kind


def test_every_baseline_object_is_in_the_tenant_namespace_and_managed_by_kuberth() -> None:
    for manifest in _by_kind().values():
        assert manifest["metadata"]["namespace"] == "alice", manifest["kind"]
        assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kuberth"


def test_the_namespace_enforces_pod_security_and_names_its_owner_by_id() -> None:
    baseline_level = dataclasses.replace(POLICY, pod_security_level="baseline")
    labels = tenant.namespace(
        "alice", github_id=42, login="Alice", personal=True, policy=baseline_level
    )["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "baseline"
    assert labels["kuberth.dev/owner-id"] == "42"
    assert labels["kuberth.dev/personal"] == "true"
    other = tenant.namespace("alice-x", github_id=42, login="Alice", personal=False, policy=POLICY)
    assert other["metadata"]["labels"]["kuberth.dev/personal"] == "false"


def test_placement_is_left_to_the_scheduler_unless_the_operator_pins_tenants() -> None:
    annotations = tenant.namespace("alice", github_id=42, login="A", personal=True, policy=POLICY)[
        "metadata"
    ]["annotations"]
    assert set(annotations) == {"kuberth.dev/owner-login"}
    toleration = {"key": "pool", "operator": "Equal", "value": "tenants", "effect": "NoSchedule"}
    pinned = dataclasses.replace(
        POLICY, node_selector={"pool": "tenants", "zone": "a"}, tolerations=[toleration]
    )
    annotations = tenant.namespace("alice", github_id=42, login="A", personal=True, policy=pinned)[
        "metadata"
    ]["annotations"]
    assert annotations["scheduler.alpha.kubernetes.io/node-selector"] == "pool=tenants,zone=a"
    assert json.loads(annotations["scheduler.alpha.kubernetes.io/defaultTolerations"]) == [
        toleration
    ]


def test_the_quota_and_limit_range_are_the_operators_policy() -> None:
    by_kind = _by_kind()
    assert by_kind["ResourceQuota"]["spec"]["hard"] == POLICY.quota
    [limits] = by_kind["LimitRange"]["spec"]["limits"]
    assert limits["type"] == "Container"
    assert limits["defaultRequest"] == POLICY.default_requests
    assert limits["default"] == POLICY.default_limits


def test_the_network_policy_denies_by_default_for_every_pod() -> None:
    namespace_only = dataclasses.replace(POLICY, egress="namespace")
    spec = tenant.network_policy("alice", namespace_only)["spec"]
    assert spec["podSelector"] == {}, "it must select every pod of the namespace"
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    # In: only from the namespace's own pods and from the ingress controller's namespace.
    [ingress] = spec["ingress"]
    assert ingress["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
    ]
    # Out: only to the namespace's own pods and to cluster DNS on port 53.
    same_namespace, dns = spec["egress"]
    assert same_namespace == {"to": [{"podSelector": {}}]}
    [dns_peer] = dns["to"]
    assert dns_peer["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
    }
    assert dns_peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    for rule in [*spec["ingress"], *spec["egress"]]:
        for peer in rule.get("from", rule.get("to", [])):
            assert "ipBlock" not in peer, "no address range may be let through"


def test_internet_egress_reaches_everything_but_the_clusters_own_ranges() -> None:
    spec = _by_kind()["NetworkPolicy"]["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    same_namespace, dns, internet = spec["egress"]
    # The own namespace by its pod selector, never by an address range.
    assert same_namespace == {"to": [{"podSelector": {}}]}
    assert [p["port"] for p in dns["ports"]] == [53, 53]
    assert internet == {
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(POLICY.egress_blocked_cidrs)}}]
    }
    assert "ports" not in internet
    for peer in spec["ingress"][0]["from"]:
        assert "ipBlock" not in peer, "no address range may come in"


def test_open_egress_has_no_egress_rule_and_the_ingress_rule_stays() -> None:
    spec = tenant.network_policy("alice", dataclasses.replace(POLICY, egress="open"))["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert "egress" not in spec
    assert spec["ingress"] == _by_kind()["NetworkPolicy"]["spec"]["ingress"]
    with pytest.raises(ValueError, match="unknown egress"):
        tenant.network_policy("alice", dataclasses.replace(POLICY, egress="anywhere"))


def test_the_role_binding_grants_the_tenant_role_to_the_tenant_alone() -> None:
    binding = _by_kind()["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "kuberth:tenant",
    }
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kuberth:42"}
    ]


def test_the_tenant_role_grants_no_rbac_quota_or_policy_writes() -> None:
    writes = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind"}
    protected = {"resourcequotas", "limitranges", "networkpolicies", "namespaces"}
    rules = tenant.tenant_cluster_role()["rules"]
    assert rules
    for rule in rules:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
        assert "rbac.authorization.k8s.io" not in rule["apiGroups"], rule
        for resource in protected & set(rule["resources"]):
            granted = set(rule["verbs"]) & writes
            # A tenant may delete its own namespace (as the API lets it); nothing else is written.
            allowed = {"delete"} if resource == "namespaces" else set()
            assert granted <= allowed, (resource, granted)
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
