"""One registry of the kinds tenants write: Deployments, Services and Ingresses.

Each kind is one object that knows all Kuberth does differently for it: its address in
Kubernetes (through its storage class), its concise form and how that is built, its policy check,
its summary, the related objects GET of one can add, how an app-level change lands in it, and the
form and list column the pages show. WorkloadService, AppService, the API routes and the pages
read this registry, so none of them branches on a kind's name; a new kind is one class here.
"""

from __future__ import annotations

import asyncio
import copy
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from kuberth.services import problems, summaries
from kuberth.services.builders import workloads as build
from kuberth.services.host_claims import host_fields
from kuberth.services.policy import WorkloadPolicy, check_deployment
from kuberth.services.specs import AppUpdate, DeploymentSpec, IngressSpec, ServiceSpec
from kuberth.storage.kubernetes.api import JSON, Identity
from kuberth.storage.kubernetes.resources import (
    DeploymentStorage,
    EndpointSliceStorage,
    EventStorage,
    IngressStorage,
    Kind,
    PodStorage,
    ResourceStorage,
    ServiceStorage,
)

SpecT = TypeVar("SpecT", bound=BaseModel)

JSONList = list[JSON]


@dataclass(frozen=True)
class FormField:
    """One input of a kind's "new" page; a nested list of the concise form is flattened into
    single fields (see :meth:`WorkloadKind.form_body`)."""

    name: str
    label: str
    type: str = "text"
    default: str = ""
    hint: str | None = None
    required: bool = False
    #: Starts with the operator's suggested image (settings.suggested_image) instead of `default`.
    suggested_image: bool = False


class Rules(Protocol):
    """What a kind's check needs from the service that writes it: the policy. (The Ingress host
    rules read the database, which the registry does not: they are checked where the hosts are
    claimed, see :mod:`~kuberth.services.host_claims`.)"""

    @property
    def policy(self) -> WorkloadPolicy: ...


@dataclass(frozen=True)
class Neighbours:
    """Where a kind's related objects are read from, as the caller."""

    pods: PodStorage
    events: EventStorage
    endpoint_slices: EndpointSliceStorage
    identity: Identity | None  # None: as Kuberth itself


class WorkloadKind(ABC, Generic[SpecT]):
    """A kind tenants create, read, change and delete through Kuberth."""

    #: Where it lives in Kubernetes: the storage class carries the address (:class:`Kind`).
    storage: type[ResourceStorage]
    #: The concise form the API and the pages accept besides the native object.
    concise: type[SpecT]
    #: The heading of its list on the namespace page.
    title: str
    #: What GET of one object can add (``include``): each costs more Kubernetes calls.
    related: frozenset[str] = frozenset()
    #: Its objects hold hosts (claimed before a write, released after a delete).
    holds_hosts: bool = False
    #: Its objects run pods: its page says why they do not run (``problems``) and shows their logs.
    runs_pods: bool = False
    #: A merge patch goes to Kubernetes as it is, checked by :meth:`check` on its own fields;
    #: otherwise it is merged here first, so the check covers exactly what is stored.
    patched_in_kubernetes: bool = False
    #: The inputs of its "new" page.
    form: tuple[FormField, ...]
    #: Lists of the concise form the page flattens: list field -> the input its errors show at.
    form_lists: Mapping[str, str] = MappingProxyType({})
    #: The macro of templates/kinds.html that shows a summary in the namespace page's list.
    list_column: str

    @property
    def address(self) -> Kind:
        return self.storage.kind

    @property
    def plural(self) -> str:
        return self.address.plural

    @property
    def kind(self) -> str:
        return self.address.kind

    @property
    def api_version(self) -> str:
        return self.address.api_version

    @property
    def noun(self) -> str:
        """The kind in running text: "deployment", "ingress"."""
        return self.kind.lower()

    @abstractmethod
    def build(self, spec: SpecT, *, namespace: str, policy: WorkloadPolicy) -> JSON:
        """The native object of a concise form."""

    def from_concise(self, body: Any, *, namespace: str, policy: WorkloadPolicy) -> JSON:
        """The native object of a body in the concise form.

        Raises:
            pydantic.ValidationError: the body is not this kind's concise form.
        """
        return self.build(self.concise.model_validate(body), namespace=namespace, policy=policy)

    @abstractmethod
    def check(self, manifest: JSON, *, namespace: str, rules: Rules) -> list[str]:
        """Kuberth's rules for the kind (size is checked for every kind before); returns the
        hosts the object would hold."""

    @abstractmethod
    def summarize(self, obj: JSON) -> JSON:
        """What users want to know about the object, from its raw JSON."""

    async def details(self, obj: JSON, include: frozenset[str], neighbours: Neighbours) -> JSON:
        """The summary with the related objects asked for (a subset of :attr:`related`)."""
        return self.summarize(obj)

    @abstractmethod
    def apply_app_change(self, obj: JSON, change: AppUpdate) -> None:
        """Set, in ``obj`` (an app's part of this kind), the fields that carry ``change``."""

    def app_changed(self, obj: JSON, change: AppUpdate) -> JSON:
        """``obj`` with the app-level change applied; ``obj`` itself is left as it is."""
        new = copy.deepcopy(obj)
        self.apply_app_change(new, change)
        return new

    def form_fields(self) -> list[dict[str, Any]]:
        """The inputs as the form template reads them."""
        return [
            {
                "name": f.name,
                "label": f.label,
                "type": f.type,
                "default": f.default,
                "hint": f.hint,
                "required": f.required,
            }
            for f in self.form
        ]

    def form_body(self, values: Mapping[str, str]) -> dict[str, Any]:
        """The concise body of a submitted form: empty inputs are left out."""
        return {k: v for k, v in values.items() if v}


class Deployments(WorkloadKind[DeploymentSpec]):
    storage = DeploymentStorage
    concise = DeploymentSpec
    title = "Deployments"
    related = frozenset({"pods", "events", "problems"})
    runs_pods = True
    patched_in_kubernetes = True  # Kubernetes merges; the replica and quantity rules hold for both
    form = (
        FormField("name", "Name", required=True),
        FormField("image", "Image", required=True, suggested_image=True),
        FormField("replicas", "Replicas", type="number", default="1"),
        FormField("port", "Container port", type="number"),
    )
    list_column = "deployment"

    def build(self, spec: DeploymentSpec, *, namespace: str, policy: WorkloadPolicy) -> JSON:
        return build.deployment(spec, namespace=namespace)

    def check(self, manifest: JSON, *, namespace: str, rules: Rules) -> list[str]:
        check_deployment(manifest)
        return []

    def summarize(self, obj: JSON) -> JSON:
        return summaries.deployment(obj)

    async def details(self, obj: JSON, include: frozenset[str], neighbours: Neighbours) -> JSON:
        """Pods, recent events and problems: each reads the pods (events are picked by their
        names), events and problems the events too, both at once. Problems of a Deployment whose
        pods all run cost nothing more: there are none."""
        summary = self.summarize(obj)
        if "problems" in include and problems.healthy(obj):
            summary["problems"] = []
            include = include - {"problems"}
        if not include:
            return summary
        namespace = obj["metadata"]["namespace"]
        selector = obj.get("spec", {}).get("selector", {}).get("matchLabels", {})
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        identity = neighbours.identity
        pods_read = neighbours.pods.alist(
            namespace=namespace, label_selector=labels, identity=identity
        )
        if include & {"events", "problems"}:
            pods, events = await asyncio.gather(
                pods_read, neighbours.events.alist(namespace=namespace, identity=identity)
            )
        else:
            pods, events = await pods_read, {}
        pod_items: JSONList = pods.get("items", [])
        if "pods" in include:
            summary["pods"] = [summaries.pod(p) for p in pod_items]
        if include & {"events", "problems"}:
            related = self._related_events(obj, pod_items, events.get("items", []))
            if "events" in include:
                summary["events"] = [summaries.event(e) for e in related[:20]]
            if "problems" in include:
                summary["problems"] = problems.problems(obj, pod_items, related)
        return summary

    @staticmethod
    def _related_events(obj: JSON, pods: JSONList, events: JSONList) -> JSONList:
        """The events about the Deployment, its ReplicaSets and its pods, newest first (raw).

        A ReplicaSet that could not make a single pod is known by its name only:
        ``<deployment>-<pod template hash>``.
        """
        name = obj["metadata"]["name"]
        names = {name} | {p["metadata"]["name"] for p in pods}
        names |= {ref["name"] for p in pods for ref in p["metadata"].get("ownerReferences", [])}
        replica_set = re.compile(rf"^{re.escape(name)}-[a-z0-9]+$")
        related = [
            e
            for e in events
            if e.get("involvedObject", {}).get("name") in names
            or (
                e.get("involvedObject", {}).get("kind") == "ReplicaSet"
                and replica_set.match(e.get("involvedObject", {}).get("name", ""))
            )
        ]
        related.sort(key=lambda e: summaries.event(e)["last_seen"] or "", reverse=True)
        return related

    def apply_app_change(self, obj: JSON, change: AppUpdate) -> None:
        container = obj["spec"]["template"]["spec"]["containers"][0]
        if change.image is not None:
            container["image"] = change.image
        if change.replicas is not None:
            obj["spec"]["replicas"] = change.replicas
        if change.env is not None:
            container["env"] = [{"name": e.name, "value": e.value} for e in change.env] or None
            if container["env"] is None:
                del container["env"]
        if change.port is not None:
            container["ports"] = [{"containerPort": change.port, "name": "http", "protocol": "TCP"}]


class Services(WorkloadKind[ServiceSpec]):
    storage = ServiceStorage
    concise = ServiceSpec
    title = "Services"
    related = frozenset({"endpoints"})
    form = (
        FormField("name", "Name", required=True),
        FormField("app", "Pods of app", required=True, hint="selects pods labelled app=<this>"),
        FormField("port", "Port", type="number", default="80", required=True),
        FormField("target_port", "Target port", type="number", hint="default: the port"),
    )
    form_lists = MappingProxyType({"ports": "port"})
    list_column = "service"

    def build(self, spec: ServiceSpec, *, namespace: str, policy: WorkloadPolicy) -> JSON:
        return build.service(spec, namespace=namespace)

    def check(self, manifest: JSON, *, namespace: str, rules: Rules) -> list[str]:
        rules.policy.check_service(manifest)
        return []

    def summarize(self, obj: JSON) -> JSON:
        return summaries.service(obj)

    async def details(self, obj: JSON, include: frozenset[str], neighbours: Neighbours) -> JSON:
        """Ready endpoints: one more call, for the Service's EndpointSlices."""
        if "endpoints" not in include:
            return summaries.service(obj, None)
        found = await neighbours.endpoint_slices.alist(
            namespace=obj["metadata"]["namespace"],
            label_selector=f"kubernetes.io/service-name={obj['metadata']['name']}",
            identity=neighbours.identity,
        )
        return summaries.service(obj, found.get("items", []))

    def apply_app_change(self, obj: JSON, change: AppUpdate) -> None:
        if change.port is not None:
            obj["spec"]["ports"][0]["targetPort"] = change.port

    def form_body(self, values: Mapping[str, str]) -> dict[str, Any]:
        present = super().form_body(values)
        port = {
            "port": present.pop("port", ""),
            **({"target_port": present.pop("target_port")} if "target_port" in present else {}),
        }
        return {**present, "ports": [port]}


class Ingresses(WorkloadKind[IngressSpec]):
    storage = IngressStorage
    concise = IngressSpec
    title = "Ingresses"
    holds_hosts = True
    form = (
        FormField("name", "Name", required=True),
        FormField("host", "Host", required=True),
        FormField("service", "Service", required=True),
        FormField("port", "Service port", type="number", default="80", required=True),
        FormField("path", "Path", default="/"),
    )
    form_lists = MappingProxyType({"paths": "service"})
    list_column = "ingress"

    def build(self, spec: IngressSpec, *, namespace: str, policy: WorkloadPolicy) -> JSON:
        return build.ingress(spec, namespace=namespace, default_class=policy.ingress_classes[0])

    def check(self, manifest: JSON, *, namespace: str, rules: Rules) -> list[str]:
        # The structural rules; the host rules come with the claim (see Rules).
        return sorted({host for _, host in host_fields(rules.policy, manifest)})

    def summarize(self, obj: JSON) -> JSON:
        return summaries.ingress(obj)

    def apply_app_change(self, obj: JSON, change: AppUpdate) -> None:
        if change.host is not None:
            obj["spec"]["rules"][0]["host"] = change.host

    def form_body(self, values: Mapping[str, str]) -> dict[str, Any]:
        present = super().form_body(values)
        path = {k: present.pop(k) for k in ("service", "port", "path") if k in present}
        return {**present, "paths": [path]}


DEPLOYMENT = Deployments()
SERVICE = Services()
INGRESS = Ingresses()

#: Every kind by its plural, in the order lists, routes and pages show them.
KINDS: Mapping[str, WorkloadKind[Any]] = MappingProxyType(
    {kind.plural: kind for kind in (DEPLOYMENT, SERVICE, INGRESS)}
)
