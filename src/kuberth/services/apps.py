"""Apps: a Deployment, its Service and an Ingress, created, changed and deleted together.

All or nothing: when a step fails, what the earlier steps made (or changed) is undone, and the
error says which step failed.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from kuberth.exceptions import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    KuberthError,
    NotFoundError,
)
from kuberth.services import summaries
from kuberth.services.builders import workloads as build
from kuberth.services.kinds import DEPLOYMENT, INGRESS, SERVICE, WorkloadKind
from kuberth.services.naming import invalid_host_reason
from kuberth.services.policy import check_size
from kuberth.services.principal import Principal
from kuberth.services.specs import AppSpec, AppUpdate
from kuberth.services.workloads import WorkloadService, require_valid_name
from kuberth.storage.kubernetes.api import JSON

log = logging.getLogger(__name__)

#: The hosts an app's Ingress holds (``list`` is a method's name inside AppService).
Hosts = list[str]

#: An app's parts, in the order of creation; deletion goes the other way. Each step is named by
#: its kind's noun, in errors and in the app's summary.
STEPS: tuple[WorkloadKind[Any], ...] = (DEPLOYMENT, SERVICE, INGRESS)


class AppService:
    def __init__(
        self, *, workloads: WorkloadService, apps_domain: str, url_template: str = "http://{host}/"
    ) -> None:
        self._workloads = workloads
        self._apps_domain = apps_domain
        self._url_template = url_template

    async def create(self, principal: Principal, namespace: str, spec: AppSpec) -> JSON:
        """Raises the failing step's error, prefixed with the step, after undoing the others."""
        await self._workloads.arequire_access(principal, namespace)
        host = spec.host or build.default_host(spec.name, namespace, self._apps_domain)
        reason = None if spec.host else invalid_host_reason(host)
        if reason:  # e.g. <app>-<namespace> is longer than a DNS label may be
            raise InvalidInputError(
                f"name: the default host {host} {reason}; choose a shorter name or give a host",
                field="name",
            )
        manifests = build.app(
            spec,
            namespace=namespace,
            host=host,
            ingress_class=self._workloads.policy.ingress_classes[0],
        )
        identity = principal.kubernetes_identity
        async with self._workloads.audit.achange(principal, "create", "App", namespace, spec.name):
            for manifest in manifests:
                check_size(manifest)
            await self._claim(manifests[2], namespace)
            done: list[str] = []
            made: dict[str, JSON | None] = {}
            try:
                for kind, manifest in zip(STEPS, manifests, strict=True):
                    try:
                        made[kind.plural] = await self._workloads.storage(kind.plural).acreate(
                            manifest, namespace=namespace, identity=identity
                        )
                    except KuberthError as error:
                        raise error.prefixed(f"creating the {kind.noun}") from error
                    done.append(kind.plural)
            except BaseException:
                for plural in reversed(done):
                    await _undo(
                        partial(
                            self._workloads.storage(plural).adelete,
                            spec.name,
                            namespace=namespace,
                            identity=identity,
                        )
                    )
                await self._workloads.claims.arelease(namespace=namespace, ingress=spec.name)
                raise
        # What the API server answered: no second read.
        return _summary(spec.name, made, self._url_template)

    async def get(self, principal: Principal, namespace: str, name: str) -> JSON:
        """Raises NotFoundError when the app's Deployment does not exist."""
        await self._workloads.arequire_access(principal, namespace)
        require_valid_name("app", name)
        parts = await self._read_parts(principal, namespace, name)
        deployment = parts[DEPLOYMENT.plural]
        if deployment is None or not _is_app(deployment, name):
            raise NotFoundError(f"app {name} not found")
        # Two calls more (pods, events), only when its pods do not all run.
        found = await self._workloads.details(
            principal, DEPLOYMENT.plural, deployment, frozenset({"problems"})
        )
        return {**_summary(name, parts, self._url_template), "problems": found["problems"]}

    async def _read_parts(
        self, principal: Principal, namespace: str, name: str
    ) -> dict[str, JSON | None]:
        """The app's three parts, read at once; a missing one is None."""
        identity = principal.kubernetes_identity
        found = await asyncio.gather(
            *(
                self._workloads.storage(kind.plural).aread(
                    name, namespace=namespace, identity=identity
                )
                for kind in STEPS
            )
        )
        return {kind.plural: obj for kind, obj in zip(STEPS, found, strict=True)}

    async def list(self, principal: Principal, namespace: str) -> list[JSON]:
        """Three list calls at once, whatever the number of apps."""
        await self._workloads.arequire_access(principal, namespace)
        identity = principal.kubernetes_identity
        found: dict[str, dict[str, JSON | None]] = {}
        lists = await asyncio.gather(
            *(
                self._workloads.storage(kind.plural).alist(
                    namespace=namespace, label_selector=build.KUBERTH_APP, identity=identity
                )
                for kind in STEPS
            )
        )
        for kind, items in zip(STEPS, lists, strict=True):
            for obj in items.get("items", []):
                app = obj["metadata"]["labels"][build.KUBERTH_APP]
                found.setdefault(app, dict.fromkeys(k.plural for k in STEPS))[kind.plural] = obj
        return [
            _summary(name, parts, self._url_template)
            for name, parts in sorted(found.items())
            if parts[DEPLOYMENT.plural]
        ]

    async def update(
        self, principal: Principal, namespace: str, name: str, change: AppUpdate
    ) -> JSON:
        """Change the parts together; if a write fails, the parts already changed are restored."""
        await self._workloads.arequire_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        async with self._workloads.audit.achange(principal, "update", "App", namespace, name):
            read = await self._read_parts(principal, namespace, name)
            current = {plural: obj for plural, obj in read.items() if obj is not None}
            if len(current) < len(STEPS) or not _is_app(current[DEPLOYMENT.plural], name):
                raise NotFoundError(f"app {name} not found (or one of its parts is missing)")
            wanted = {k.plural: k.app_changed(current[k.plural], change) for k in STEPS}
            for manifest in wanted.values():
                check_size(manifest)
            hosts: list[str] = []
            if change.host:
                hosts = await self._claim(wanted[INGRESS.plural], namespace)
            written: list[str] = []
            final: dict[str, JSON | None] = dict(current)
            try:
                for kind in STEPS:
                    plural = kind.plural
                    if wanted[plural] == current[plural]:
                        continue
                    try:
                        final[plural] = await self._write(kind, current[plural], change, identity)
                    except KuberthError as error:
                        raise error.prefixed(f"updating the {kind.noun}") from error
                    written.append(plural)
            except BaseException:
                for plural in reversed(written):
                    await _undo(partial(self._restore, plural, current[plural], identity))
                if change.host:
                    old = summaries.ingress_hosts(current[INGRESS.plural])
                    await self._workloads.claims.arelease(
                        namespace=namespace, ingress=name, keep=old
                    )
                raise
            if change.host:
                await self._workloads.claims.arelease(namespace=namespace, ingress=name, keep=hosts)
        return _summary(name, final, self._url_template)

    async def delete(self, principal: Principal, namespace: str, name: str) -> None:
        """Delete every part; NotFoundError when there was none."""
        await self._workloads.arequire_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        async with self._workloads.audit.achange(principal, "delete", "App", namespace, name):
            deployment = await self._workloads.storage(DEPLOYMENT.plural).aread(
                name, namespace=namespace, identity=identity
            )
            if deployment is None or not _is_app(deployment, name):
                raise NotFoundError(f"app {name} not found")
            for kind in reversed(STEPS):
                try:
                    await self._workloads.storage(kind.plural).adelete(
                        name, namespace=namespace, identity=identity
                    )
                except KuberthError as error:
                    raise error.prefixed(f"deleting the {kind.noun}") from error
            await self._workloads.claims.arelease(namespace=namespace, ingress=name)

    async def _claim(self, ingress: JSON, namespace: str) -> Hosts:
        """Check and claim the Ingress's hosts (one transaction); a rule's refusal names the
        app's ``host`` field, a holder's conflict is passed on as it is."""
        try:
            return await self._workloads.claims.aclaim(
                ingress, namespace=namespace, ingress=ingress["metadata"]["name"]
            )
        except (InvalidInputError, ForbiddenError) as error:
            prefixed = error.prefixed("checking the ingress host")
            prefixed.field = "host"
            raise prefixed from error

    async def _write(
        self, kind: WorkloadKind[Any], live: JSON, change: AppUpdate, identity: Any
    ) -> JSON:
        """Apply the change to ``live``, conditionally on its version; on a conflict (controllers
        write status all the time) read again and reapply, as client-go's RetryOnConflict does.
        The change sets fields, so reapplying it is always right."""
        storage = self._workloads.storage(kind.plural)
        namespace, name = live["metadata"]["namespace"], live["metadata"]["name"]
        for attempt in range(CONFLICT_RETRIES):
            try:
                return await storage.areplace(kind.app_changed(live, change), identity=identity)
            except ConflictError:
                await _back_off(attempt)
                fresh = await storage.aread(name, namespace=namespace, identity=identity)
                if fresh is None:
                    raise NotFoundError(f"{kind.noun} {name} disappeared") from None
                live = fresh
        return await storage.areplace(kind.app_changed(live, change), identity=identity)

    async def _restore(self, plural: str, original: JSON, identity: Any) -> None:
        """Put the original spec back. Controllers write status all the time, so the version is
        read afresh for each try instead of trusting the one our own write returned."""
        storage = self._workloads.storage(plural)
        namespace, name = original["metadata"]["namespace"], original["metadata"]["name"]
        for attempt in range(CONFLICT_RETRIES + 1):
            live = await storage.aread(name, namespace=namespace, identity=identity)
            if live is None:
                return
            restored = copy.deepcopy(original)
            restored["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            try:
                await storage.areplace(restored, identity=identity)
                return
            except ConflictError:
                if attempt == CONFLICT_RETRIES:
                    raise
                await _back_off(attempt)


async def _undo(action: Callable[[], Awaitable[object]]) -> None:
    """One step of undoing a failed change; its own failure is logged, not raised (the change's
    error is the answer)."""
    try:
        await action()
    except KuberthError:
        log.exception("could not undo a step of a failed app change")


#: Conflicts a write of ours meets while controllers update the object's status (a Deployment
#: rolling out is written several times a second): read again and retry, backing off as
#: client-go's retry.DefaultBackoff does, 3.6 s in all at most.
CONFLICT_RETRIES = 6


async def _back_off(attempt: int) -> None:
    """10 ms, 30 ms, 90 ms ... (x3 each time), with 10 % jitter, so a burst of status writes
    passes instead of being raced again at once."""
    await asyncio.sleep(0.01 * 3**attempt * (1 + random.random() / 10))  # noqa: S311 - jitter, not a secret


def _is_app(obj: JSON, name: str) -> bool:
    return (obj.get("metadata", {}).get("labels") or {}).get(build.KUBERTH_APP) == name


def _summary(name: str, parts: dict[str, JSON | None], url_template: str) -> JSON:
    """The app's name, each part's summary under its kind's noun, and the URL of its host."""
    summary: JSON = {"name": name}
    for kind in STEPS:
        part = parts[kind.plural]
        summary[kind.noun] = kind.summarize(part) if part else None
    ingress = parts[INGRESS.plural]
    hosts = summaries.ingress_hosts(ingress) if ingress else []
    return {**summary, "url": url_template.format(host=hosts[0]) if hosts else None}
