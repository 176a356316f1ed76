"""Deployments, Services and Ingresses in a tenant's namespace, read and written as the tenant.

Every call impersonates the caller, so Kubernetes RBAC enforces the boundary; Kuberth's own checks
(ownership, host and service rules) come first and answer with clearer errors.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from kuberth.exceptions import InvalidInputError, KuberthError, NotFoundError
from kuberth.services import summaries
from kuberth.services.audit import AuditService
from kuberth.services.host_claims import IngressClaims
from kuberth.services.hosts import HostClaims
from kuberth.services.kinds import DEPLOYMENT, KINDS, Neighbours, WorkloadKind
from kuberth.services.merge import merge_patch
from kuberth.services.namespaces import NamespaceService
from kuberth.services.naming import invalid_object_name_reason
from kuberth.services.policy import WorkloadPolicy, check_size
from kuberth.services.principal import Principal
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.resources import (
    EndpointSliceStorage,
    EventStorage,
    PodStorage,
    ResourceStorage,
)
from kuberth.storage.kubernetes.watching import watch_until

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

JSONList = list[JSON]


def invalid(error: ValidationError, prefix: str = "") -> InvalidInputError:
    """The first pydantic error as a 422 naming its field."""
    first = error.errors()[0]
    # A dict's bad key is reported at (..., key, "[key]"): the key itself names the field.
    location = [str(part) for part in first["loc"] if part != "[key]"]
    field = ".".join([prefix, *location] if prefix else location)
    return InvalidInputError(f"{field or 'body'}: {first['msg']}", field=field or None)


def require_valid_name(what: str, name: str) -> None:
    """An object named in a request path must have a name Kubernetes allows: no other name can
    exist, and ``.`` or ``..`` in a Kubernetes URL would address the collection or the namespace.

    Raises:
        NotFoundError: saying why no such object can exist.
    """
    reason = invalid_object_name_reason(name)
    if reason:
        raise NotFoundError(f"{what} {name!r} not found: a name {reason}")


class WorkloadService:
    """The verbs on every kind of :data:`~kuberth.services.kinds.KINDS`, named by its plural;
    what differs between kinds is the kind's own (the registry), not branches here."""

    def __init__(
        self,
        *,
        namespaces: NamespaceService,
        api: KubernetesApi,
        pods: PodStorage,
        events: EventStorage,
        endpoint_slices: EndpointSliceStorage,
        policy: WorkloadPolicy,
        hosts: HostClaims,
        claims: IngressClaims,
        audit: AuditService,
        rollout_timeout: float,
    ) -> None:
        #: The index and rows of every host claim (started with the app).
        self.hosts = hosts
        #: The API's claims for the Ingresses it writes.
        self.claims = claims
        self._namespaces = namespaces
        self._storage: dict[str, ResourceStorage] = {
            kind.plural: kind.storage(api) for kind in KINDS.values()
        }
        self._pods = pods
        self._events = events
        self._slices = endpoint_slices
        self.policy = policy
        self.audit = audit
        self.rollout_timeout = rollout_timeout

    def storage(self, plural: str) -> ResourceStorage:
        return self._storage[plural]

    @staticmethod
    def kind(plural: str) -> WorkloadKind[Any]:
        return KINDS[plural]

    async def arequire_access(self, principal: Principal, namespace: str) -> None:
        await self._namespaces.arequire_access(principal, namespace)

    # -- bodies -----------------------------------------------------------------------------------

    def manifest(self, plural: str, body: Any, *, namespace: str, name: str | None = None) -> JSON:
        """The native object from a body in either form; checks kind, name and namespace.

        Raises:
            InvalidInputError: naming the field that is wrong.
        """
        kind = self.kind(plural)
        if not isinstance(body, dict):
            raise InvalidInputError("the body must be a JSON object")
        if {"apiVersion", "kind", "metadata", "spec"} & body.keys():
            manifest = dict(body)
            if manifest.get("kind", kind.kind) != kind.kind:
                raise InvalidInputError(f"kind must be {kind.kind}", field="kind")
            if manifest.get("apiVersion", kind.api_version) != kind.api_version:
                raise InvalidInputError(
                    f"apiVersion must be {kind.api_version}", field="apiVersion"
                )
            if not isinstance(manifest.get("metadata") or {}, dict):
                raise InvalidInputError("metadata must be an object", field="metadata")
            metadata = dict(manifest.get("metadata") or {})
            if metadata.get("namespace", namespace) != namespace:
                raise InvalidInputError(
                    f"metadata.namespace {metadata['namespace']!r} is not the path's {namespace!r}",
                    field="metadata.namespace",
                )
            if not metadata.get("name"):
                raise InvalidInputError("metadata.name is required", field="metadata.name")
            if not isinstance(metadata["name"], str):
                raise InvalidInputError("metadata.name must be a string", field="metadata.name")
            reason = invalid_object_name_reason(metadata["name"])
            if reason:
                raise InvalidInputError(f"metadata.name {reason}", field="metadata.name")
            metadata["namespace"] = namespace
            manifest.update(apiVersion=kind.api_version, kind=kind.kind, metadata=metadata)
        else:
            try:
                manifest = kind.from_concise(body, namespace=namespace, policy=self.policy)
            except ValidationError as error:
                raise invalid(error) from error
        if name is not None and manifest["metadata"]["name"] != name:
            raise InvalidInputError(
                "metadata.name differs from the path's name", field="metadata.name"
            )
        return manifest

    # -- policy -----------------------------------------------------------------------------------

    def check_rules(
        self, principal: Principal, plural: str, manifest: JSON, namespace: str
    ) -> list[str]:
        """Size, then the kind's own rules; returns the hosts the object would hold."""
        check_size(manifest)
        return self.kind(plural).check(manifest, namespace=namespace, rules=self)

    async def _check_and_claim(
        self, principal: Principal, plural: str, manifest: JSON, namespace: str, name: str
    ) -> list[str]:
        """Size, then the kind's own rules; an Ingress's hosts are checked and claimed for it in
        one transaction. Returns the hosts claimed (none for other kinds).

        Raises:
            ConflictError: another Ingress holds one of them; nothing is claimed.
        """
        if not self.kind(plural).holds_hosts:
            return self.check_rules(principal, plural, manifest, namespace)
        check_size(manifest)
        return await self.claims.aclaim(manifest, namespace=namespace, ingress=name)

    # -- verbs ------------------------------------------------------------------------------------
    # On the event loop: each waits on Kubernetes and the database without holding a thread.

    async def list(self, principal: Principal, plural: str, namespace: str) -> list[JSON]:
        await self._namespaces.arequire_access(principal, namespace)
        items = await self._storage[plural].alist(
            namespace=namespace, identity=principal.kubernetes_identity
        )
        return [self.summarize(plural, obj) for obj in items.get("items", [])]

    async def read(self, principal: Principal, plural: str, namespace: str, name: str) -> JSON:
        """The raw object. Raises NotFoundError."""
        await self._namespaces.arequire_access(principal, namespace)
        noun = self.kind(plural).noun
        require_valid_name(noun, name)
        obj = await self._storage[plural].aread(
            name, namespace=namespace, identity=principal.kubernetes_identity
        )
        if obj is None:
            raise NotFoundError(f"{noun} {name} not found")
        return obj

    async def recent_events(
        self, principal: Principal, namespace: str, limit: int = 15
    ) -> JSONList:
        """The namespace's newest events, read as the caller, on the event loop."""
        await self._namespaces.arequire_access(principal, namespace)
        items = await self._events.alist(
            namespace=namespace, identity=principal.kubernetes_identity
        )
        events = [summaries.event(e) for e in items.get("items", [])]
        events.sort(key=lambda e: e["last_seen"] or "", reverse=True)
        return events[:limit]

    def summarize(self, plural: str, obj: JSON) -> JSON:
        return self.kind(plural).summarize(obj)

    def check_include(self, plural: str, include: Iterable[str]) -> frozenset[str]:
        """The related objects asked for, when this kind has them.

        Raises:
            InvalidInputError: naming ``include``.
        """
        kind = self.kind(plural)
        asked = frozenset(include)
        unknown = sorted(asked - kind.related)
        if unknown:
            offered = ", ".join(sorted(kind.related)) or "nothing"
            raise InvalidInputError(
                f"include: {unknown[0]!r} is not related to a {kind.kind} (it offers {offered})",
                field="include",
            )
        return asked

    async def details(
        self, principal: Principal, plural: str, obj: JSON, include: frozenset[str] = frozenset()
    ) -> JSON:
        """The summary, with the related objects asked for (the kind reads them as the caller)."""
        neighbours = Neighbours(
            pods=self._pods,
            events=self._events,
            endpoint_slices=self._slices,
            identity=principal.kubernetes_identity,
        )
        return await self.kind(plural).details(obj, include, neighbours)

    async def create(self, principal: Principal, plural: str, namespace: str, body: Any) -> JSON:
        await self._namespaces.arequire_access(principal, namespace)
        manifest = self.manifest(plural, body, namespace=namespace)
        name = manifest["metadata"]["name"]
        async with self.audit.achange(principal, "create", self.kind(plural).kind, namespace, name):
            manifest.get("metadata", {}).pop("resourceVersion", None)
            hosts = await self._check_and_claim(principal, plural, manifest, namespace, name)
            try:
                return await self._storage[plural].acreate(
                    manifest, namespace=namespace, identity=principal.kubernetes_identity
                )
            except BaseException:
                if hosts:
                    await self.claims.arelease(namespace=namespace, ingress=name)
                raise

    async def replace(
        self, principal: Principal, plural: str, namespace: str, name: str, body: Any
    ) -> JSON:
        await self._namespaces.arequire_access(principal, namespace)
        kind = self.kind(plural)
        require_valid_name(kind.noun, name)
        manifest = self.manifest(plural, body, namespace=namespace, name=name)
        async with self.audit.achange(principal, "replace", kind.kind, namespace, name):
            return await self._update(principal, plural, namespace, name, manifest)

    async def patch(
        self, principal: Principal, plural: str, namespace: str, name: str, patch: Any
    ) -> JSON:
        """JSON merge patch. Unless the kind lets Kubernetes merge (Deployments: the patch's own
        fields are checked), it is merged here first, checked, and written back conditionally on
        the version read, so the check covers exactly what is stored."""
        await self._namespaces.arequire_access(principal, namespace)
        kind = self.kind(plural)
        require_valid_name(kind.noun, name)
        if not isinstance(patch, dict):
            raise InvalidInputError("a merge patch must be a JSON object")
        if patch.get("kind", kind.kind) != kind.kind:
            raise InvalidInputError(f"kind must be {kind.kind}", field="kind")
        if patch.get("apiVersion", kind.api_version) != kind.api_version:
            raise InvalidInputError(f"apiVersion must be {kind.api_version}", field="apiVersion")
        if "metadata" in patch and patch["metadata"] is None:
            raise InvalidInputError("metadata cannot be removed", field="metadata")
        metadata = patch.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInputError("metadata must be an object", field="metadata")
        if metadata.get("namespace", namespace) != namespace:
            raise InvalidInputError(
                "metadata.namespace differs from the path's", field="metadata.namespace"
            )
        if metadata.get("name", name) != name:
            raise InvalidInputError("metadata.name differs from the path's", field="metadata.name")
        async with self.audit.achange(principal, "patch", kind.kind, namespace, name):
            identity = principal.kubernetes_identity
            storage = self._storage[plural]
            if kind.patched_in_kubernetes:  # such a kind's rules hold no hosts
                self.check_rules(principal, plural, patch, namespace)
                return await storage.apatch(name, patch, namespace=namespace, identity=identity)
            current = await storage.aread(name, namespace=namespace, identity=identity)
            if current is None:
                raise NotFoundError(f"{kind.noun} {name} not found")
            merged = merge_patch(current, patch)
            if "resourceVersion" not in metadata:
                merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return await self._update(principal, plural, namespace, name, merged)

    async def _update(
        self, principal: Principal, plural: str, namespace: str, name: str, manifest: JSON
    ) -> JSON:
        hosts = await self._check_and_claim(principal, plural, manifest, namespace, name)
        identity = principal.kubernetes_identity
        try:
            result = await self._storage[plural].areplace(manifest, identity=identity)
        except BaseException:
            if hosts:  # nothing was written (a stale version, say): hold what is stored, no more
                with contextlib.suppress(KuberthError):  # the write's own error is the answer
                    stored = await self._storage[plural].aread(
                        name, namespace=namespace, identity=identity
                    )
                    owner = await self._namespaces.arequire_access(principal, namespace)
                    await self.claims.ahold_stored(
                        stored, namespace=namespace, ingress=name, owner_id=owner
                    )
            raise
        if self.kind(plural).holds_hosts:
            await self.claims.arelease(namespace=namespace, ingress=name, keep=hosts)
        return result

    async def delete(self, principal: Principal, plural: str, namespace: str, name: str) -> None:
        await self._namespaces.arequire_access(principal, namespace)
        kind = self.kind(plural)
        require_valid_name(kind.noun, name)
        async with self.audit.achange(principal, "delete", kind.kind, namespace, name):
            gone = await self._storage[plural].adelete(
                name, namespace=namespace, identity=principal.kubernetes_identity
            )
            if kind.holds_hosts:
                await self.claims.arelease(namespace=namespace, ingress=name)
            if gone is None:
                raise NotFoundError(f"{kind.noun} {name} not found")

    # -- deployment actions -----------------------------------------------------------------------

    async def scale(self, principal: Principal, namespace: str, name: str, replicas: int) -> JSON:
        await self._namespaces.arequire_access(principal, namespace)
        require_valid_name(DEPLOYMENT.noun, name)
        async with self.audit.achange(principal, "scale", DEPLOYMENT.kind, namespace, name):
            await self._storage[DEPLOYMENT.plural].apatch(
                name,
                {"spec": {"replicas": replicas}},
                namespace=namespace,
                identity=principal.kubernetes_identity,
                subresource="scale",
            )
        return await self.read(principal, DEPLOYMENT.plural, namespace, name)

    async def restart(self, principal: Principal, namespace: str, name: str) -> JSON:
        """A rollout restart, as kubectl does it: a new annotation in the pod template."""
        await self._namespaces.arequire_access(principal, namespace)
        require_valid_name(DEPLOYMENT.noun, name)
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        async with self.audit.achange(principal, "restart", DEPLOYMENT.kind, namespace, name):
            return await self._storage[DEPLOYMENT.plural].apatch(
                name, patch, namespace=namespace, identity=principal.kubernetes_identity
            )

    async def wait_for_rollout(
        self, principal: Principal, namespace: str, name: str, *, timeout: float
    ) -> tuple[str, JSON]:
        """Watch the Deployment until its rollout is complete or failed, or ``timeout`` passes;
        on the event loop, holding no thread however long it waits.

        Returns ("complete" | "failed" | "timeout", the last state seen).

        Raises:
            NotFoundError: no such Deployment (or not the caller's), or deleted while waited on.
        """
        obj = await self.read(principal, DEPLOYMENT.plural, namespace, name)
        watched = await watch_until(
            self._storage[DEPLOYMENT.plural],
            name,
            namespace=namespace,
            since=obj,
            until=lambda deployment: summaries.rollout_state(deployment) != "progressing",
            timeout=timeout,
            identity=principal.kubernetes_identity,
        )
        if watched.ended == "deleted":
            raise NotFoundError(f"{DEPLOYMENT.noun} {name} not found")
        if watched.ended == "timeout":
            return "timeout", watched.last_seen
        return summaries.rollout_state(watched.last_seen), watched.last_seen
