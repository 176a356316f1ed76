"""What tenants may put in Deployments, Services and Ingresses: hosts, classes, types, replicas,
sizes (pure checks).

A tenant's hosts are those of its namespace's subdomain of the apps domain — ``<ns>.<apps>``,
``*.<ns>.<apps>`` and ``<anything>-<ns>.<apps>`` (the default app host) — and hosts under the
custom domains an operator verified for it. Who already holds a host is checked elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from kuberth.exceptions import ForbiddenError, InvalidInputError
from kuberth.services.naming import invalid_host_reason

JSON = dict[str, Any]

#: Annotations that let a tenant inject configuration into a shared ingress controller.
_SNIPPET_MARKERS = ("snippet", "lua")

#: The most replicas a tenant's Deployment may ask for, however it is written.
MAX_REPLICAS = 100

#: Kubernetes' quantity syntax. The API server refuses a value that does not match with a 400 that
#: names no field, so Kuberth checks it first.
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")

#: The largest object Kuberth sends. etcd refuses requests over 1.5 MiB, and the API server then
#: answers 500; a smaller limit here makes that a 422 that says why.
MAX_OBJECT_BYTES = 1024 * 1024


def _object(value: Any, field: str) -> JSON:
    """``value`` if it is a JSON object (or absent: {}), else a 422 naming ``field``.

    The checks below read fields of the tenant's body before Kubernetes decodes it; a list or a
    string where an object belongs must be a 422, not an AttributeError.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{field} must be an object", field=field)
    return value


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInputError(f"{field} must be a list", field=field)
    return value


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string", field=field)
    return value


def check_size(obj: Any) -> None:
    """Raise when ``obj`` (an object or a patch) is too large for Kubernetes to store."""
    size = len(json.dumps(obj, separators=(",", ":")).encode())
    if size > MAX_OBJECT_BYTES:
        raise InvalidInputError(
            f"the object is {size} bytes as JSON; at most {MAX_OBJECT_BYTES} bytes are allowed"
        )


def check_deployment(deployment: JSON) -> None:
    """The replica limit the concise forms and scaling enforce, for native objects and patches;
    the containers' resource quantities, so a bad one is a 422 naming it."""
    spec = _object(deployment.get("spec"), "spec")
    replicas = spec.get("replicas")
    if replicas is not None:
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise InvalidInputError("spec.replicas must be a whole number", field="spec.replicas")
        if not 0 <= replicas <= MAX_REPLICAS:
            raise InvalidInputError(
                f"spec.replicas must be between 0 and {MAX_REPLICAS}", field="spec.replicas"
            )
    template = _object(spec.get("template"), "spec.template")
    pod = _object(template.get("spec"), "spec.template.spec")
    for kind in ("initContainers", "containers"):
        where = f"spec.template.spec.{kind}"
        for i, container in enumerate(_list(pod.get(kind), where)):
            container = _object(container, f"{where}[{i}]")
            resources = _object(container.get("resources"), f"{where}[{i}].resources")
            for group in ("requests", "limits"):
                quantities = _object(resources.get(group), f"{where}[{i}].resources.{group}")
                for name, value in quantities.items():
                    _check_quantity(value, f"{where}[{i}].resources.{group}[{name}]")


def _check_quantity(value: Any, field: str) -> None:
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _QUANTITY.fullmatch(text):
        raise InvalidInputError(
            f"{field}: {value!r} is not a quantity (e.g. 500m, 2, 256Mi, 1Gi)", field=field
        )


@dataclass(frozen=True)
class WorkloadPolicy:
    apps_domain: str
    custom_domains: dict[str, list[int]]
    ingress_classes: tuple[str, ...]
    service_types: tuple[str, ...]

    def host_namespaces(self, host: str) -> list[str]:
        """Namespaces whose subdomain could contain ``host``, longest (most specific) first."""
        suffix = f".{self.apps_domain}"
        if not host.endswith(suffix):
            return []
        labels = host[: -len(suffix)].split(".")
        candidates = [labels[-1]]  # <ns>.<apps> and *.<ns>.<apps>
        if len(labels) == 1:  # <x>-<ns>.<apps>: one label, nothing under it (as kubectl's policy)
            only = labels[0]
            candidates += [only[i + 1 :] for i, c in enumerate(only) if c == "-"]
        return sorted(set(candidates), key=len, reverse=True)

    def check_host(
        self, host: str, *, field: str, namespace: str, owner_id: int, taken: Collection[str]
    ) -> None:
        """Raise unless ``host`` is in ``namespace``'s subdomain or a custom domain of the owner.

        ``taken`` are the Kuberth namespaces among :meth:`host_namespaces` (from the database): a
        host that another namespace's subdomain claims more specifically is not this one's.
        """
        if "*" in host:
            raise InvalidInputError(f"{field}: wildcard hosts are not allowed", field=field)
        reason = invalid_host_reason(host)
        if reason:
            raise InvalidInputError(f"{field}: {host!r} {reason}", field=field)
        for domain, owners in self.custom_domains.items():
            if (host == domain or host.endswith(f".{domain}")) and owner_id in owners:
                return
        for candidate in self.host_namespaces(host):
            if candidate == namespace:
                return
            if candidate in taken:
                break  # a more specific namespace's subdomain holds it
        raise ForbiddenError(
            f"{field}: {host} is outside your subdomain; use <name>-{namespace}.{self.apps_domain} "
            f"or a host under {namespace}.{self.apps_domain}",
            field=field,
        )

    def check_ingress(self, ingress: JSON) -> list[tuple[str, str]]:
        """Structural rules; returns every (field, host) to check with :meth:`check_host`."""
        spec = _object(ingress.get("spec"), "spec")
        metadata = _object(ingress.get("metadata"), "metadata")
        annotations = _object(metadata.get("annotations"), "metadata.annotations")
        for key in annotations:
            if any(marker in str(key).lower() for marker in _SNIPPET_MARKERS):
                raise InvalidInputError(
                    f"metadata.annotations: {key} is not allowed (no controller snippets)",
                    field="metadata.annotations",
                )
        if spec.get("defaultBackend"):
            raise InvalidInputError(
                "spec.defaultBackend: a catch-all backend is not allowed",
                field="spec.defaultBackend",
            )
        ingress_class = spec.get("ingressClassName")
        if ingress_class not in self.ingress_classes:
            raise InvalidInputError(
                f"spec.ingressClassName must be one of {', '.join(self.ingress_classes)}",
                field="spec.ingressClassName",
            )
        hosts: list[tuple[str, str]] = []
        rules = _list(spec.get("rules"), "spec.rules")
        if not rules:
            raise InvalidInputError("spec.rules: at least one rule with a host", field="spec.rules")
        for i, rule in enumerate(rules):
            host = _object(rule, f"spec.rules[{i}]").get("host")
            if not host:
                raise InvalidInputError(
                    f"spec.rules[{i}].host: a rule without a host (catch-all) is not allowed",
                    field=f"spec.rules[{i}].host",
                )
            hosts.append((f"spec.rules[{i}].host", _string(host, f"spec.rules[{i}].host")))
        for i, tls in enumerate(_list(spec.get("tls"), "spec.tls")):
            tls_hosts = _object(tls, f"spec.tls[{i}]").get("hosts")
            for j, host in enumerate(_list(tls_hosts, f"spec.tls[{i}].hosts")):
                hosts.append(
                    (f"spec.tls[{i}].hosts[{j}]", _string(host, f"spec.tls[{i}].hosts[{j}]"))
                )
        return hosts

    def check_service(self, service: JSON) -> None:
        spec = _object(service.get("spec"), "spec")
        kind = spec.get("type", "ClusterIP")
        if not isinstance(kind, str):
            raise InvalidInputError("spec.type must be a string", field="spec.type")
        if kind not in self.service_types:
            raise ForbiddenError(
                f"spec.type: {kind} Services are not allowed here "
                f"(allowed: {', '.join(self.service_types)})",
                field="spec.type",
            )
        if spec.get("externalIPs"):
            raise ForbiddenError("spec.externalIPs are not allowed", field="spec.externalIPs")
