"""The tenant baseline manifests, against reviewed golden JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kuberth.services.builders import tenant

GOLDEN = Path(__file__).parent / "golden"
POLICY = tenant.TenantPolicy(
    quota={"pods": "50", "requests.cpu": "4"},
    default_requests={"cpu": "100m", "memory": "128Mi"},
    default_limits={"cpu": "500m", "memory": "512Mi"},
    pod_security_level="restricted",
    ingress_controller_namespace="ingress-nginx",
)


def _check(name: str, value: object) -> None:
    path = GOLDEN / f"{name}.json"
    rendered = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if os.environ.get("KUBERTH_UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert rendered == path.read_text(), f"{name} differs from {path}; review, then regenerate"


def test_namespace() -> None:
    _check(
        "namespace",
        tenant.namespace(
            "alice", github_id=42, login="Alice", personal=True, pod_security_level="restricted"
        ),
    )


def test_baseline() -> None:
    _check("baseline", tenant.baseline("alice", github_id=42, policy=POLICY))


def test_tenant_cluster_role() -> None:
    _check("tenant-cluster-role", tenant.tenant_cluster_role())


def test_the_role_binding_comes_last() -> None:
    kinds = [m["kind"] for m in tenant.baseline("alice", github_id=42, policy=POLICY)]
    assert kinds[-1] == "RoleBinding"


def test_the_tenant_role_grants_no_rbac_quota_or_policy_writes() -> None:
    writes = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind"}
    for rule in tenant.tenant_cluster_role()["rules"]:
        if set(rule["verbs"]) & writes - {"delete"}:
            assert "rbac.authorization.k8s.io" not in rule["apiGroups"]
            assert not {"resourcequotas", "limitranges", "networkpolicies", "namespaces"} & set(
                rule["resources"]
            )
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
