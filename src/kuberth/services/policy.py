"""What tenants may put in Services and Ingresses: hosts, classes, types (pure checks).

A tenant's hosts are those of its namespace's subdomain of the apps domain — ``<ns>.<apps>``,
``*.<ns>.<apps>`` and ``<anything>-<ns>.<apps>`` (the default app host) — and hosts under the
custom domains an operator verified for it. Who already holds a host is checked elsewhere.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from kuberth.exceptions import ForbiddenError, InvalidInputError

JSON = dict[str, Any]

#: Annotations that let a tenant inject configuration into a shared ingress controller.
_SNIPPET_MARKERS = ("snippet", "lua")


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
        first = labels[-1]
        candidates += [first[i + 1 :] for i, c in enumerate(first) if c == "-"]  # <x>-<ns>.<apps>
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
        spec = ingress.get("spec") or {}
        annotations = (ingress.get("metadata") or {}).get("annotations") or {}
        for key in annotations:
            if any(marker in key.lower() for marker in _SNIPPET_MARKERS):
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
        rules = spec.get("rules") or []
        if not rules:
            raise InvalidInputError("spec.rules: at least one rule with a host", field="spec.rules")
        for i, rule in enumerate(rules):
            host = rule.get("host")
            if not host:
                raise InvalidInputError(
                    f"spec.rules[{i}].host: a rule without a host (catch-all) is not allowed",
                    field=f"spec.rules[{i}].host",
                )
            hosts.append((f"spec.rules[{i}].host", str(host)))
        for i, tls in enumerate(spec.get("tls") or []):
            for j, host in enumerate(tls.get("hosts") or []):
                hosts.append((f"spec.tls[{i}].hosts[{j}]", str(host)))
        return hosts

    def check_service(self, service: JSON) -> None:
        spec = service.get("spec") or {}
        kind = spec.get("type", "ClusterIP")
        if kind not in self.service_types:
            raise ForbiddenError(
                f"spec.type: {kind} Services are not allowed here "
                f"(allowed: {', '.join(self.service_types)})",
                field="spec.type",
            )
        if spec.get("externalIPs"):
            raise ForbiddenError("spec.externalIPs are not allowed", field="spec.externalIPs")
