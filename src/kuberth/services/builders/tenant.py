"""Manifests of a tenant namespace and its baseline, as pure functions (no I/O).

Everything here is applied with server-side apply under the ``kuberth`` field manager, so applying
the same manifests again converges instead of failing, and a removed piece comes back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]

MANAGED_BY = "app.kubernetes.io/managed-by"
OWNER_ID = "kuberth.dev/owner-id"
OWNER_LOGIN = "kuberth.dev/owner-login"
PERSONAL = "kuberth.dev/personal"
TENANT_CLUSTER_ROLE = "kuberth:tenant"
TENANTS_GROUP = "kuberth:tenants"
BASELINE_NAME = "kuberth-tenant"

_READ = ["get", "list", "watch"]
_WRITE = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


def tenant_user(github_id: int) -> str:
    """The Kubernetes user a tenant's requests impersonate."""
    return f"kuberth:{github_id}"


@dataclass(frozen=True)
class TenantPolicy:
    """The operator's choices that shape every tenant namespace."""

    quota: dict[str, str]
    default_requests: dict[str, str]
    default_limits: dict[str, str]
    pod_security_level: str
    ingress_controller_namespace: str
    #: Where tenant pods may connect: ``internet``, ``namespace`` or ``open`` (see `egress`).
    egress: str
    #: What ``internet`` egress excludes: IPv4 ranges of the cluster's own networks.
    egress_blocked_cidrs: Sequence[str]
    #: Node labels every tenant pod is pinned to, and the taints they tolerate (see `placement`).
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()


def tenant_cluster_role() -> Manifest:
    """What a tenant may do in its own namespaces: edit-like, without RBAC, quota or policy writes.

    Bound per namespace by a RoleBinding, so it grants nothing outside the tenant's namespaces.
    Namespaces, quotas, limit ranges and network policies are readable, not writable: a tenant can
    neither relabel its namespace (Pod Security) nor lift its quota or its default-deny policy.
    """
    rules = [
        {
            "apiGroups": [""],
            "resources": [
                "pods",
                "services",
                "configmaps",
                "secrets",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "serviceaccounts",
            ],
            "verbs": _WRITE,
        },
        {
            "apiGroups": [""],
            "resources": ["pods/log", "pods/status", "services/status", "endpoints", "events"],
            "verbs": _READ,
        },
        {
            "apiGroups": [""],
            "resources": ["pods/exec", "pods/portforward", "pods/attach", "pods/eviction"],
            "verbs": ["get", "create"],
        },
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "watch", "delete"]},
        {
            "apiGroups": [""],
            "resources": ["resourcequotas", "limitranges"],
            "verbs": _READ,
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
            "verbs": _WRITE,
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/scale", "replicasets/scale", "statefulsets/scale"],
            "verbs": ["get", "update", "patch"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/status", "replicasets/status", "statefulsets/status"],
            "verbs": _READ,
        },
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _WRITE},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _WRITE},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _WRITE},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": _WRITE},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _READ},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": _READ},
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": TENANT_CLUSTER_ROLE, "labels": {MANAGED_BY: "kuberth"}},
        "rules": rules,
    }


def namespace(
    name: str, *, github_id: int, login: str, personal: bool, policy: TenantPolicy
) -> Manifest:
    """The namespace, labelled with its owner (the id decides; the login is for people)."""
    pod_security_level = policy.pod_security_level
    labels = {
        MANAGED_BY: "kuberth",
        OWNER_ID: str(github_id),
        PERSONAL: "true" if personal else "false",
        "pod-security.kubernetes.io/enforce": pod_security_level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": pod_security_level,
        "pod-security.kubernetes.io/audit": pod_security_level,
    }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {OWNER_LOGIN: login, **placement(policy)},
        },
    }


#: Namespace annotations read by the PodNodeSelector and PodTolerationRestriction admission
#: plugins: every pod created in the namespace gets the node selector and tolerations.
NODE_SELECTOR = "scheduler.alpha.kubernetes.io/node-selector"
DEFAULT_TOLERATIONS = "scheduler.alpha.kubernetes.io/defaultTolerations"


def placement(policy: TenantPolicy) -> dict[str, str]:
    """Where a tenant's pods run: annotations the API server's admission enforces.

    Why annotations and not a field Kuberth writes into each pod: a pod created any other way
    (kubectl with the downloaded kubeconfig, a ReplicaSet) is placed the same, a pod asking for a
    conflicting node selector is refused, and a tenant cannot edit its namespace. Needs the
    PodNodeSelector and PodTolerationRestriction plugins (the local plane enables both).
    """
    annotations = {}
    if policy.node_selector:
        selector = ",".join(f"{key}={value}" for key, value in sorted(policy.node_selector.items()))
        annotations[NODE_SELECTOR] = selector
    if policy.tolerations:
        annotations[DEFAULT_TOLERATIONS] = json.dumps(list(policy.tolerations), sort_keys=True)
    return annotations


def _meta(namespace_name: str) -> dict[str, Any]:
    return {"name": BASELINE_NAME, "namespace": namespace_name, "labels": {MANAGED_BY: "kuberth"}}


def resource_quota(namespace_name: str, policy: TenantPolicy) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(namespace_name),
        "spec": {"hard": dict(policy.quota)},
    }


def limit_range(namespace_name: str, policy: TenantPolicy) -> Manifest:
    """Defaults for containers that name no resources, so the quota never refuses them for that."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta(namespace_name),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": dict(policy.default_requests),
                    "default": dict(policy.default_limits),
                }
            ]
        },
    }


def network_policy(namespace_name: str, policy: TenantPolicy) -> Manifest:
    """Default deny, except inside the namespace and from the ingress controller; out, as
    :func:`egress` says."""
    same_namespace: Manifest = {"podSelector": {}}
    ingress_controller = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": policy.ingress_controller_namespace}
        }
    }
    spec: Manifest = {
        "podSelector": {},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [same_namespace, ingress_controller]}],
    }
    rules = egress(policy)
    if rules is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = rules
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(namespace_name),
        "spec": spec,
    }


def egress(policy: TenantPolicy) -> list[Manifest] | None:
    """The egress rules of the operator's choice; None: no egress rule at all (``open``).

    - ``namespace``: the namespace's own pods (its Services too: kube-proxy has turned a ClusterIP
      into a pod address before the policy looks) and cluster DNS;
    - ``internet``: that, and every IPv4 address outside ``egress_blocked_cidrs``. An ipBlock must
      not be what lets cluster-internal traffic through (how an ipBlock matches pod addresses is
      up to the implementation), so the cluster's own ranges are cut out of it and the own
      namespace is allowed by its pod selector alone: another tenant's pods, Services (after
      DNAT) and the nodes stay out of reach. IPv6 is not opened.
    """
    same_namespace: Manifest = {"podSelector": {}}
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    if policy.egress == "open":
        return None
    rules: list[Manifest] = [{"to": [same_namespace]}, dns]
    if policy.egress == "internet":
        block: Manifest = {"cidr": "0.0.0.0/0"}
        if policy.egress_blocked_cidrs:
            block["except"] = list(policy.egress_blocked_cidrs)
        rules.append({"to": [{"ipBlock": block}]})
    elif policy.egress != "namespace":
        raise ValueError(f"unknown egress policy {policy.egress!r}")
    return rules


def role_binding(namespace_name: str, *, github_id: int) -> Manifest:
    """Binds the tenant's impersonated identity to the tenant role, in this namespace only."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(namespace_name),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": TENANT_CLUSTER_ROLE,
        },
        "subjects": [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": tenant_user(github_id),
            }
        ],
    }


def baseline(namespace_name: str, *, github_id: int, policy: TenantPolicy) -> list[Manifest]:
    """The objects every tenant namespace carries, in apply order.

    The RoleBinding comes last: until every other piece is in place the tenant has no access, so a
    half-provisioned namespace is never usable.
    """
    return [
        resource_quota(namespace_name, policy),
        limit_range(namespace_name, policy),
        network_policy(namespace_name, policy),
        role_binding(namespace_name, github_id=github_id),
    ]


def kubectl_service_account_name(github_id: int) -> str:
    return f"kuberth-user-{github_id}"


def kubectl_service_account(namespace_name: str, *, github_id: int) -> Manifest:
    """The identity a downloaded kubeconfig carries: one per user and namespace."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": kubectl_service_account_name(github_id),
            "namespace": namespace_name,
            "labels": {MANAGED_BY: "kuberth", OWNER_ID: str(github_id)},
        },
        "automountServiceAccountToken": False,
    }


def kubectl_role_binding(namespace_name: str, *, github_id: int) -> Manifest:
    """Binds the kubeconfig's service account to the same tenant role, in this namespace only."""
    name = kubectl_service_account_name(github_id)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace_name, "labels": {MANAGED_BY: "kuberth"}},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": TENANT_CLUSTER_ROLE,
        },
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace_name}],
    }
