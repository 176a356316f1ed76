"""Deployments, Services and Ingresses from their concise forms, as pure functions (no I/O).

Pods are built to pass the `restricted` Pod Security level that tenant namespaces enforce.
"""

from __future__ import annotations

from typing import Any

from kuberth.services.builders.tenant import MANAGED_BY
from kuberth.services.specs import AppSpec, DeploymentSpec, IngressSpec, ServicePort, ServiceSpec

Manifest = dict[str, Any]

APP_LABEL = "app"
KUBERTH_APP = "kuberth.dev/app"

_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment(
    spec: DeploymentSpec, *, namespace: str, labels: dict[str, str] | None = None
) -> Manifest:
    pod_labels = {APP_LABEL: spec.name}
    container: Manifest = {
        "name": spec.name,
        "image": spec.image,
        "securityContext": dict(_RESTRICTED_CONTAINER),
    }
    if spec.port:
        container["ports"] = [{"containerPort": spec.port, "name": "http", "protocol": "TCP"}]
    if spec.env:
        container["env"] = [{"name": e.name, "value": e.value} for e in spec.env]
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    resources = {k: dict(v) for k, v in spec.resources.model_dump().items() if v}
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": spec.name,
            "namespace": namespace,
            "labels": {**pod_labels, **(labels or {})},
        },
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": {**pod_labels, **(labels or {})}},
                "spec": {"containers": [container]},
            },
        },
    }


def _service_port(port: ServicePort) -> Manifest:
    result: Manifest = {
        "port": port.port,
        "targetPort": port.target_port or port.port,
        "protocol": port.protocol,
    }
    if port.name:
        result["name"] = port.name
    return result


def service(spec: ServiceSpec, *, namespace: str, labels: dict[str, str] | None = None) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.name,
            "namespace": namespace,
            "labels": {APP_LABEL: spec.app, **(labels or {})},
        },
        "spec": {
            "type": spec.type,
            "selector": {APP_LABEL: spec.app},
            "ports": [_service_port(p) for p in spec.ports],
        },
    }


def ingress(
    spec: IngressSpec, *, namespace: str, default_class: str, labels: dict[str, str] | None = None
) -> Manifest:
    paths = [
        {
            "path": p.path,
            "pathType": "Prefix",
            "backend": {"service": {"name": p.service, "port": {"number": p.port}}},
        }
        for p in spec.paths
    ]
    body: Manifest = {
        "ingressClassName": spec.ingress_class or default_class,
        "rules": [{"host": spec.host, "http": {"paths": paths}}],
    }
    if spec.tls_secret:
        body["tls"] = [{"hosts": [spec.host], "secretName": spec.tls_secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": body,
    }


def default_host(app: str, namespace: str, apps_domain: str) -> str:
    return f"{app}-{namespace}.{apps_domain}"


def app(
    spec: AppSpec, *, namespace: str, host: str, ingress_class: str
) -> tuple[Manifest, Manifest, Manifest]:
    """The Deployment, Service and Ingress of an app, all labelled with the app's name."""
    labels = {KUBERTH_APP: spec.name, MANAGED_BY: "kuberth"}
    return (
        deployment(
            DeploymentSpec(
                name=spec.name,
                image=spec.image,
                replicas=spec.replicas,
                port=spec.port,
                env=spec.env,
            ),
            namespace=namespace,
            labels=labels,
        ),
        service(
            ServiceSpec(
                name=spec.name,
                app=spec.name,
                ports=[ServicePort(port=80, target_port=spec.port, name="http")],
            ),
            namespace=namespace,
            labels=labels,
        ),
        ingress(
            IngressSpec(
                name=spec.name, host=host, paths=[{"path": "/", "service": spec.name, "port": 80}]
            ),
            namespace=namespace,
            default_class=ingress_class,
            labels=labels,
        ),
    )
