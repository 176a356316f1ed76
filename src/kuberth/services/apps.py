"""Apps: a Deployment, its Service and an Ingress, created, changed and deleted together.

All or nothing: when a step fails, what the earlier steps made (or changed) is undone, and the
error says which step failed.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from kuberth.exceptions import ConflictError, InvalidInputError, KuberthError, NotFoundError
from kuberth.services import summaries
from kuberth.services.builders import workloads as build
from kuberth.services.naming import invalid_host_reason
from kuberth.services.policy import check_size
from kuberth.services.principal import Principal
from kuberth.services.specs import AppSpec, AppUpdate
from kuberth.services.workloads import WorkloadService, require_valid_name
from kuberth.storage.kubernetes.api import JSON

log = logging.getLogger(__name__)

#: The hosts an app's Ingress holds (``list`` is a method's name inside AppService).
Hosts = list[str]

#: Order of creation; deletion goes the other way.
STEPS = (("deployment", "deployments"), ("service", "services"), ("ingress", "ingresses"))


class AppService:
    def __init__(self, *, workloads: WorkloadService, apps_domain: str) -> None:
        self._workloads = workloads
        self._apps_domain = apps_domain

    def create(self, principal: Principal, namespace: str, spec: AppSpec) -> JSON:
        """Raises the failing step's error, prefixed with the step, after undoing the others."""
        self._workloads.require_access(principal, namespace)
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
        with self._workloads.audit.change(principal, "create", "App", namespace, spec.name):
            for manifest in manifests:
                check_size(manifest)
            hosts = self._check_host(principal, manifests[2], namespace)
            self._workloads.claim_hosts(principal, hosts, namespace=namespace, ingress=spec.name)
            done: list[str] = []
            made: dict[str, JSON | None] = {}
            try:
                for (step, plural), manifest in zip(STEPS, manifests, strict=True):
                    try:
                        made[plural] = self._workloads.storage(plural).create(
                            manifest, namespace=namespace, identity=identity
                        )
                    except KuberthError as error:
                        raise error.prefixed(f"creating the {step}") from error
                    done.append(plural)
            except BaseException:
                for plural in reversed(done):
                    self._undo(
                        lambda p=plural: self._workloads.storage(p).delete(
                            spec.name, namespace=namespace, identity=identity
                        )
                    )
                self._workloads.release_hosts(namespace=namespace, ingress=spec.name)
                raise
        return _summary(spec.name, made)  # what the API server answered: no second read

    def get(self, principal: Principal, namespace: str, name: str) -> JSON:
        """Raises NotFoundError when the app's Deployment does not exist."""
        self._workloads.require_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        parts = {
            plural: self._workloads.storage(plural).read(
                name, namespace=namespace, identity=identity
            )
            for _, plural in STEPS
        }
        if parts["deployments"] is None or not _is_app(parts["deployments"], name):
            raise NotFoundError(f"app {name} not found")
        return _summary(name, parts)

    def list(self, principal: Principal, namespace: str) -> list[JSON]:
        """Three list calls, whatever the number of apps."""
        self._workloads.require_access(principal, namespace)
        identity = principal.kubernetes_identity
        found: dict[str, dict[str, JSON | None]] = {}
        for _, plural in STEPS:
            items = self._workloads.storage(plural).list(
                namespace=namespace, label_selector=build.KUBERTH_APP, identity=identity
            )
            for obj in items.get("items", []):
                app = obj["metadata"]["labels"][build.KUBERTH_APP]
                found.setdefault(app, dict.fromkeys(p for _, p in STEPS))[plural] = obj
        return [
            _summary(name, parts) for name, parts in sorted(found.items()) if parts["deployments"]
        ]

    def update(self, principal: Principal, namespace: str, name: str, change: AppUpdate) -> JSON:
        """Change the parts together; if a write fails, the parts already changed are restored."""
        self._workloads.require_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        with self._workloads.audit.change(principal, "update", "App", namespace, name):
            read = {
                plural: self._workloads.storage(plural).read(
                    name, namespace=namespace, identity=identity
                )
                for _, plural in STEPS
            }
            current = {plural: obj for plural, obj in read.items() if obj is not None}
            if len(current) < len(STEPS) or not _is_app(current["deployments"], name):
                raise NotFoundError(f"app {name} not found (or one of its parts is missing)")
            wanted = {plural: _changed(plural, obj, change) for plural, obj in current.items()}
            for manifest in wanted.values():
                check_size(manifest)
            hosts: list[str] = []
            if change.host:
                hosts = self._check_host(principal, wanted["ingresses"], namespace)
                self._workloads.claim_hosts(principal, hosts, namespace=namespace, ingress=name)
            written: list[str] = []
            final: dict[str, JSON | None] = dict(current)
            try:
                for step, plural in STEPS:
                    if wanted[plural] == current[plural]:
                        continue
                    try:
                        final[plural] = self._write(plural, current[plural], change, identity)
                    except KuberthError as error:
                        raise error.prefixed(f"updating the {step}") from error
                    written.append(plural)
            except BaseException:
                for plural in reversed(written):
                    self._undo(lambda p=plural: self._restore(p, current[p], identity))
                if change.host:
                    old = summaries.ingress_hosts(current["ingresses"])
                    self._workloads.release_hosts(namespace=namespace, ingress=name, keep=old)
                raise
            if change.host:
                self._workloads.release_hosts(namespace=namespace, ingress=name, keep=hosts)
        return _summary(name, final)

    def delete(self, principal: Principal, namespace: str, name: str) -> None:
        """Delete every part; NotFoundError when there was none."""
        self._workloads.require_access(principal, namespace)
        require_valid_name("app", name)
        identity = principal.kubernetes_identity
        with self._workloads.audit.change(principal, "delete", "App", namespace, name):
            deployment = self._workloads.storage("deployments").read(
                name, namespace=namespace, identity=identity
            )
            if deployment is None or not _is_app(deployment, name):
                raise NotFoundError(f"app {name} not found")
            for step, plural in reversed(STEPS):
                try:
                    self._workloads.storage(plural).delete(
                        name, namespace=namespace, identity=identity
                    )
                except KuberthError as error:
                    raise error.prefixed(f"deleting the {step}") from error
            self._workloads.release_hosts(namespace=namespace, ingress=name)

    def _check_host(self, principal: Principal, ingress: JSON, namespace: str) -> Hosts:
        """The Ingress rules for the app's one host; an error names the app's ``host`` field."""
        try:
            return self._workloads.check_rules(principal, "ingresses", ingress, namespace)
        except KuberthError as error:
            prefixed = error.prefixed("checking the ingress host")
            prefixed.field = "host"
            raise prefixed from error

    def _write(self, plural: str, live: JSON, change: AppUpdate, identity: Any) -> JSON:
        """Apply the change to ``live``, conditionally on its version; on a conflict (controllers
        write status all the time) read again and reapply, as client-go's RetryOnConflict does.
        The change sets fields, so reapplying it is always right."""
        storage = self._workloads.storage(plural)
        namespace, name = live["metadata"]["namespace"], live["metadata"]["name"]
        for _ in range(4):
            try:
                return storage.replace(_changed(plural, live, change), identity=identity)
            except ConflictError:
                fresh = storage.read(name, namespace=namespace, identity=identity)
                if fresh is None:
                    raise NotFoundError(f"{plural[:-1]} {name} disappeared") from None
                live = fresh
        return storage.replace(_changed(plural, live, change), identity=identity)

    def _restore(self, plural: str, original: JSON, identity: Any) -> None:
        """Put the original spec back. Controllers write status all the time, so the version is
        read afresh for each try instead of trusting the one our own write returned."""
        storage = self._workloads.storage(plural)
        namespace, name = original["metadata"]["namespace"], original["metadata"]["name"]
        for attempt in range(5):
            live = storage.read(name, namespace=namespace, identity=identity)
            if live is None:
                return
            restored = copy.deepcopy(original)
            restored["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            try:
                storage.replace(restored, identity=identity)
                return
            except ConflictError:
                if attempt == 4:
                    raise

    @staticmethod
    def _undo(action: Any) -> None:
        try:
            action()
        except KuberthError:
            log.exception("could not undo a step of a failed app change")


def _is_app(obj: JSON, name: str) -> bool:
    return (obj.get("metadata", {}).get("labels") or {}).get(build.KUBERTH_APP) == name


def _changed(plural: str, obj: JSON, change: AppUpdate) -> JSON:
    """``obj`` with the app-level change applied to the fields that carry it."""
    new = copy.deepcopy(obj)
    if plural == "deployments":
        container = new["spec"]["template"]["spec"]["containers"][0]
        if change.image is not None:
            container["image"] = change.image
        if change.replicas is not None:
            new["spec"]["replicas"] = change.replicas
        if change.env is not None:
            container["env"] = [{"name": e.name, "value": e.value} for e in change.env] or None
            if container["env"] is None:
                del container["env"]
        if change.port is not None:
            container["ports"] = [{"containerPort": change.port, "name": "http", "protocol": "TCP"}]
    elif plural == "services" and change.port is not None:
        new["spec"]["ports"][0]["targetPort"] = change.port
    elif plural == "ingresses" and change.host is not None:
        new["spec"]["rules"][0]["host"] = change.host
    return new


def _summary(name: str, parts: dict[str, JSON | None]) -> JSON:
    deployment, service, ingress = parts["deployments"], parts["services"], parts["ingresses"]
    hosts = summaries.ingress_hosts(ingress) if ingress else []
    return {
        "name": name,
        "deployment": summaries.deployment(deployment) if deployment else None,
        "service": summaries.service(service) if service else None,
        "ingress": summaries.ingress(ingress) if ingress else None,
        "url": f"http://{hosts[0]}/" if hosts else None,
    }
