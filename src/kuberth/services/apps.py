"""Apps: a Deployment, its Service and an Ingress, created, changed and deleted together.

The parts are written through the app's own storage (:mod:`~kuberth.storage.kubernetes.apps`),
all or nothing; here are what the registry of kinds says about each part (how a change lands in
it, its summary), Kuberth's rules, the Ingress's host claim, access and the audit record.
"""

from __future__ import annotations

from typing import Any

from kuberth.exceptions import ForbiddenError, InvalidInputError, NotFoundError
from kuberth.services import summaries
from kuberth.services.audit import AuditService
from kuberth.services.builders import workloads as build
from kuberth.services.host_claims import IngressClaims
from kuberth.services.kinds import DEPLOYMENT, INGRESS, KINDS, SERVICE, Neighbours, WorkloadKind
from kuberth.services.namespaces import NamespaceService
from kuberth.services.naming import invalid_host_reason
from kuberth.services.policy import WorkloadPolicy, check_size
from kuberth.services.principal import Principal
from kuberth.services.specs import AppSpec, AppUpdate
from kuberth.services.workloads import require_valid_name
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.apps import AppManifests, AppParts, AppStorage
from kuberth.storage.kubernetes.resources import EndpointSliceStorage, EventStorage, PodStorage

#: The hosts an app's Ingress holds (``list`` is a method's name inside AppService).
Hosts = list[str]

#: An app's parts, in the order of creation (the app storage's); each is named by its kind's
#: noun, in errors and in the app's summary.
STEPS: tuple[WorkloadKind[Any], ...] = (DEPLOYMENT, SERVICE, INGRESS)

#: An app's parts as written (all three) or as found (any may be missing).
Parts = AppManifests | AppParts


class AppService:
    def __init__(
        self,
        *,
        apps: AppStorage,
        namespaces: NamespaceService,
        claims: IngressClaims,
        policy: WorkloadPolicy,
        audit: AuditService,
        pods: PodStorage,
        events: EventStorage,
        endpoint_slices: EndpointSliceStorage,
        apps_domain: str,
        url_template: str = "http://{host}/",
    ) -> None:
        self._apps = apps
        self._namespaces = namespaces
        self._claims = claims
        self._policy = policy
        self._audit = audit
        self._pods = pods
        self._events = events
        self._slices = endpoint_slices
        self._apps_domain = apps_domain
        self._url_template = url_template

    async def create(self, principal: Principal, namespace: str, spec: AppSpec) -> JSON:
        """Raises the failing step's error, prefixed with the step, after undoing the others."""
        await self._namespaces.arequire_access(principal, namespace)
        host = spec.host or build.default_host(spec.name, namespace, self._apps_domain)
        reason = None if spec.host else invalid_host_reason(host)
        if reason:  # e.g. <app>-<namespace> is longer than a DNS label may be
            raise InvalidInputError(
                f"name: the default host {host} {reason}; choose a shorter name or give a host",
                field="name",
            )
        manifests = AppManifests(
            *build.app(
                spec,
                namespace=namespace,
                host=host,
                ingress_class=self._policy.ingress_classes[0],
            )
        )
        async with self._audit.achange(principal, "create", "App", namespace, spec.name):
            for _, manifest in manifests:
                check_size(manifest)
            await self._claim(manifests.ingresses, namespace)
            try:
                made = await self._apps.acreate(
                    manifests, namespace=namespace, identity=principal.kubernetes_identity
                )
            except BaseException:
                await self._claims.arelease(namespace=namespace, ingress=spec.name)
                raise
        # What the API server answered: no second read.
        return _summary(spec.name, made, self._url_template)

    async def get(self, principal: Principal, namespace: str, name: str) -> JSON:
        """Raises NotFoundError when the app's Deployment does not exist."""
        await self._namespaces.arequire_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        parts = await self._apps.aread(name, namespace=namespace, identity=identity)
        deployment = parts.deployments
        if deployment is None or not _is_app(deployment, name):
            raise NotFoundError(f"app {name} not found")
        # Two calls more (pods, events), only when its pods do not all run.
        neighbours = Neighbours(
            pods=self._pods, events=self._events, endpoint_slices=self._slices, identity=identity
        )
        found = await DEPLOYMENT.details(deployment, frozenset({"problems"}), neighbours)
        return {**_summary(name, parts, self._url_template), "problems": found["problems"]}

    async def list(self, principal: Principal, namespace: str) -> list[JSON]:
        """Three list calls at once, whatever the number of apps."""
        await self._namespaces.arequire_access(principal, namespace)
        found = await self._apps.alist(namespace=namespace, identity=principal.kubernetes_identity)
        return [_summary(name, parts, self._url_template) for name, parts in found.items()]

    async def update(
        self, principal: Principal, namespace: str, name: str, change: AppUpdate
    ) -> JSON:
        """Change the parts together; if a write fails, the parts already changed are restored."""
        await self._namespaces.arequire_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        async with self._audit.achange(principal, "update", "App", namespace, name):
            read = await self._apps.aread(name, namespace=namespace, identity=identity)
            current = read.complete()
            if current is None or not _is_app(current.deployments, name):
                raise NotFoundError(f"app {name} not found (or one of its parts is missing)")
            for kind in STEPS:
                check_size(kind.app_changed(current[kind.plural], change))
            hosts: Hosts = []
            if change.host:
                hosts = await self._claim(INGRESS.app_changed(current.ingresses, change), namespace)
            try:
                final = await self._apps.areplace(
                    current,
                    lambda plural, live: KINDS[plural].app_changed(live, change),
                    identity=identity,
                )
            except BaseException:
                if change.host:
                    old = summaries.ingress_hosts(current.ingresses)
                    await self._claims.arelease(namespace=namespace, ingress=name, keep=old)
                raise
            if change.host:
                await self._claims.arelease(namespace=namespace, ingress=name, keep=hosts)
        return _summary(name, final, self._url_template)

    async def delete(self, principal: Principal, namespace: str, name: str) -> None:
        """Delete every part (each by name: apps made before their parts had owner references
        go the same way); NotFoundError when there was none."""
        await self._namespaces.arequire_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        async with self._audit.achange(principal, "delete", "App", namespace, name):
            deployment = await self._apps.storage(DEPLOYMENT.plural).aread(
                name, namespace=namespace, identity=identity
            )
            if deployment is None or not _is_app(deployment, name):
                raise NotFoundError(f"app {name} not found")
            await self._apps.adelete(name, namespace=namespace, identity=identity)
            await self._claims.arelease(namespace=namespace, ingress=name)

    async def _claim(self, ingress: JSON, namespace: str) -> Hosts:
        """Check and claim the Ingress's hosts (one transaction); a rule's refusal names the
        app's ``host`` field, a holder's conflict is passed on as it is."""
        try:
            return await self._claims.aclaim(
                ingress, namespace=namespace, ingress=ingress["metadata"]["name"]
            )
        except (InvalidInputError, ForbiddenError) as error:
            prefixed = error.prefixed("checking the ingress host")
            prefixed.field = "host"
            raise prefixed from error


def _is_app(obj: JSON, name: str) -> bool:
    return (obj.get("metadata", {}).get("labels") or {}).get(build.KUBERTH_APP) == name


def _summary(name: str, parts: Parts, url_template: str) -> JSON:
    """The app's name, each part's summary under its kind's noun, and the URL of its host."""
    summary: JSON = {"name": name}
    for kind in STEPS:
        part = parts[kind.plural]
        summary[kind.noun] = kind.summarize(part) if part else None
    ingress = parts[INGRESS.plural]
    hosts = summaries.ingress_hosts(ingress) if ingress else []
    return {**summary, "url": url_template.format(host=hosts[0]) if hosts else None}
