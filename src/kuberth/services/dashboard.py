"""The dashboard's one read: the caller's namespaces with their apps, without a Kubernetes request.

Reading the apps through to the API server cost three list requests per namespace and per page
view, and the API server's tail latency (a loaded control plane answers some lists in 100 ms) made
the page's. The apps' Deployments and Ingresses come instead from watch-fed copies (informers)
holding just what the page shows; a change appears as soon as its watch event arrives
(milliseconds; the scale benchmark checks it stays under a second).

The copies are read as Kuberth, not as the tenant, so Kubernetes RBAC does not gate them: the
database does. Only namespaces the database records as the caller's are looked up, the same
ownership check every other read makes before impersonating; nothing else in the copies is
reachable from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kuberth.services import summaries
from kuberth.services.builders.workloads import KUBERTH_APP
from kuberth.services.namespaces import NamespaceService
from kuberth.services.principal import Principal
from kuberth.storage.kubernetes.informer import Informer

JSON = dict[str, Any]

#: What the copies select: the parts of apps Kuberth made.
APP_SELECTOR = KUBERTH_APP


@dataclass(frozen=True)
class AppPart:
    """What the dashboard keeps of an app's Deployment or Ingress."""

    app: str
    summary: JSON = field(default_factory=dict)
    hosts: tuple[str, ...] = ()


def deployment_part(obj: JSON) -> AppPart:
    """The informer's projection of a Deployment: its app and its summary (replicas, age)."""
    return AppPart(_app(obj), summary=summaries.deployment(obj))


def ingress_part(obj: JSON) -> AppPart:
    """The informer's projection of an Ingress: its app and its hosts (the app's URL)."""
    return AppPart(_app(obj), hosts=tuple(summaries.ingress_hosts(obj)))


def _app(obj: JSON) -> str:
    return str((obj.get("metadata", {}).get("labels") or {}).get(KUBERTH_APP, ""))


@dataclass(frozen=True)
class NamespaceApps:
    name: str
    personal: bool
    #: {"name", "deployment" (its summary), "url"}, by app name.
    apps: list[JSON]


class DashboardService:
    def __init__(
        self,
        *,
        namespaces: NamespaceService,
        deployments: Informer[AppPart],
        ingresses: Informer[AppPart],
        cache_wait: float,
        url_template: str = "http://{host}/",
    ) -> None:
        self._namespaces = namespaces
        self._url_template = url_template
        self._deployments = deployments
        self._ingresses = ingresses
        self._cache_wait = cache_wait

    async def namespaces(self, principal: Principal) -> list[NamespaceApps]:
        """The caller's own namespaces (operators too: /admin has everyone's), personal first; on
        the event loop, one query.

        Raises:
            KubernetesUnavailableError: the copies could not be read in time (only while they
                make their first list).
        """
        await self._deployments.arequire_synced(self._cache_wait)
        await self._ingresses.arequire_synced(self._cache_wait)
        return [
            NamespaceApps(ns.name, ns.personal, self._apps(ns.name))
            for ns in await self._namespaces.owned(principal)  # the ownership check
        ]

    def _apps(self, namespace: str) -> list[JSON]:
        """Like AppService.list, from the copies: an app is a Deployment with its label, and its
        URL is its Ingress's first host."""
        hosts = {p.app: p.hosts for p in self._ingresses.in_namespace(namespace).values()}
        apps = {p.app: p for p in self._deployments.in_namespace(namespace).values() if p.app}
        return [
            {
                "name": name,
                "deployment": part.summary,
                "url": self._url_template.format(host=hosts[name][0]) if hosts.get(name) else None,
            }
            for name, part in sorted(apps.items())
        ]
