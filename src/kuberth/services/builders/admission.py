"""Admission policies that hold tenants to Kuberth's rules when they use kubectl (pure builders).

Requests Kuberth makes for a tenant (group ``kuberth:tenants``) were checked by Kuberth already,
host uniqueness and custom domains included; these policies check everything else that reaches a
tenant namespace, such as a downloaded kubeconfig's requests. They cannot see other objects, so
they enforce the per-namespace host pattern, not uniqueness across namespaces.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

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


HOST_WEBHOOK = "kuberth-ingress-hosts"
#: The webhook's paths on Kuberth's admission listener.
HOST_REVIEW_PATH = "/admission/ingress-hosts"
HOST_RELEASE_PATH = "/admission/ingress-hosts/released"


def _client_config(base_url: str, path: str, ca_bundle: str) -> Manifest:
    """A URL, or a Service reference when the host is ``<name>.<namespace>.svc`` (the API server
    reaches Services without cluster DNS)."""
    parsed = urlsplit(base_url)
    host = parsed.hostname or ""
    parts = host.split(".")
    if len(parts) == 3 and parts[2] == "svc":
        service = {
            "namespace": parts[1],
            "name": parts[0],
            "path": path,
            "port": parsed.port or 443,
        }
        return {"service": service, "caBundle": ca_bundle}
    return {"url": base_url.rstrip("/") + path, "caBundle": ca_bundle}


def ingress_host_webhook(*, base_url: str, ca_bundle: str, timeout_seconds: int) -> Manifest:
    """Host ownership for every writer of an Ingress in a tenant namespace (kubectl included).

    Creates and updates fail closed (a tenant cannot take a host while Kuberth cannot answer);
    deletes only release the Ingress's claims, so they are let through when Kuberth is down (its
    reconciler releases what a missed delete left). Only tenant namespaces are matched: Kuberth
    being down never blocks the rest of the cluster.
    """
    tenant_namespaces = {"matchLabels": {MANAGED_BY: "kuberth"}}

    def webhook(name: str, path: str, operations: list[str], failure: str) -> Manifest:
        return {
            "name": name,
            "clientConfig": _client_config(base_url, path, ca_bundle),
            "rules": [
                {
                    "apiGroups": ["networking.k8s.io"],
                    "apiVersions": ["v1"],
                    "operations": operations,
                    "resources": ["ingresses"],
                    "scope": "Namespaced",
                }
            ],
            "namespaceSelector": tenant_namespaces,
            "failurePolicy": failure,
            "sideEffects": "NoneOnDryRun",  # claims are written only for real requests
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": timeout_seconds,
            "matchPolicy": "Equivalent",
        }

    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": HOST_WEBHOOK, "labels": {MANAGED_BY: "kuberth"}},
        "webhooks": [
            webhook("hosts.kuberth.dev", HOST_REVIEW_PATH, ["CREATE", "UPDATE"], "Fail"),
            webhook("host-releases.kuberth.dev", HOST_RELEASE_PATH, ["DELETE"], "Ignore"),
        ],
    }
