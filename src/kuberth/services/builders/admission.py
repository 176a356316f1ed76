"""Admission policies that hold tenants to Kuberth's rules when they use kubectl (pure builders).

Requests Kuberth makes for a tenant (group ``kuberth:tenants``) were checked by Kuberth already,
host uniqueness and custom domains included; these policies check everything else that reaches a
tenant namespace, such as a downloaded kubeconfig's requests. They cannot see other objects, so
they enforce the per-namespace host pattern, not uniqueness across namespaces.
"""

from __future__ import annotations

import re
from typing import Any

from kuberth.services.builders.tenant import MANAGED_BY, TENANTS_GROUP

Manifest = dict[str, Any]

INGRESS_POLICY = "kuberth-tenant-ingresses"
SERVICE_POLICY = "kuberth-tenant-services"


def _cel_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _policy(name: str, resource: str, group: str, validations: list[Manifest]) -> Manifest:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": {MANAGED_BY: "kuberth"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [resource],
                    }
                ]
            },
            "matchConditions": [
                {
                    "name": "not-through-kuberth",
                    "expression": f"!({_cel_string(TENANTS_GROUP)} in request.userInfo.groups)",
                }
            ],
            "validations": validations,
        },
    }


def _binding(name: str) -> Manifest:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": {MANAGED_BY: "kuberth"}},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {MANAGED_BY: "kuberth"}}},
        },
    }


def ingress_policy(*, apps_domain: str, ingress_classes: list[str]) -> list[Manifest]:
    """Hosts only in the namespace's subdomain; no wildcards, catch-alls, snippets, odd classes."""
    domain = re.escape(apps_domain).replace("\\", "\\\\")
    pattern = f"'^([a-z0-9-]+-|([a-z0-9-]+\\\\.)*)' + request.namespace + '\\\\.{domain}$'"
    host_ok = f"h.matches({pattern})"
    classes = "[" + ", ".join(_cel_string(c) for c in ingress_classes) + "]"
    validations = [
        {
            "expression": "has(object.spec.rules) && object.spec.rules.all(r, has(r.host) && "
            + host_ok.replace("h.", "r.host.")
            + ")",
            "message": f"every rule needs a host in this namespace's subdomain of {apps_domain}",
            "reason": "Forbidden",
        },
        {
            "expression": "!has(object.spec.tls) || object.spec.tls.all(t, !has(t.hosts) || "
            f"t.hosts.all(h, {host_ok}))",
            "message": f"TLS hosts must be in this namespace's subdomain of {apps_domain}",
            "reason": "Forbidden",
        },
        {
            "expression": "!has(object.spec.defaultBackend)",
            "message": "a catch-all default backend is not allowed",
            "reason": "Forbidden",
        },
        {
            "expression": "!has(object.metadata.annotations) || "
            "object.metadata.annotations.all(k, !k.lowerAscii().contains('snippet'))",
            "message": "ingress controller snippet annotations are not allowed",
            "reason": "Forbidden",
        },
        {
            "expression": "has(object.spec.ingressClassName) && "
            f"object.spec.ingressClassName in {classes}",
            "message": f"spec.ingressClassName must be one of {', '.join(ingress_classes)}",
            "reason": "Forbidden",
        },
    ]
    return [
        _policy(INGRESS_POLICY, "ingresses", "networking.k8s.io", validations),
        _binding(INGRESS_POLICY),
    ]


def service_policy(*, service_types: list[str]) -> list[Manifest]:
    types = "[" + ", ".join(_cel_string(t) for t in service_types) + "]"
    validations = [
        {
            "expression": f"(has(object.spec.type) ? object.spec.type : 'ClusterIP') in {types}",
            "message": f"only {', '.join(service_types)} Services are allowed",
            "reason": "Forbidden",
        },
        {
            "expression": "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
            "message": "spec.externalIPs are not allowed",
            "reason": "Forbidden",
        },
    ]
    return [_policy(SERVICE_POLICY, "services", "", validations), _binding(SERVICE_POLICY)]
