"""An app's three objects as one: its Deployment, the Service in front of it and the Ingress to
that Service, created, read, listed, replaced and deleted together.

All or nothing: when a step fails, what the earlier steps made (or changed) is undone, and the
error says which step failed. The Service and the Ingress carry an ownerReference to the
Deployment, so deleting the Deployment — through Kuberth or with kubectl — lets Kubernetes' garbage
collector take the rest. Apps made before the references were set have none; they are read,
changed and deleted all the same, and get their references at their first change.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from kuberth.exceptions import KuberthError, NotFoundError
from kuberth.storage.kubernetes.api import JSON, Identity, KubernetesApi
from kuberth.storage.kubernetes.errors import KubernetesConflictError
from kuberth.storage.kubernetes.resources import (
    DeploymentStorage,
    IngressStorage,
    ResourceStorage,
    ServiceStorage,
)

log = logging.getLogger(__name__)

#: The parts' plurals, in the order of creation; deletion goes the other way.
DEPLOYMENTS = DeploymentStorage.kind.plural
SERVICES = ServiceStorage.kind.plural
INGRESSES = IngressStorage.kind.plural
ORDER = (DEPLOYMENTS, SERVICES, INGRESSES)
#: The parts the Deployment owns (an ownerReference each).
OWNED = (SERVICES, INGRESSES)

#: Conflicts a write of ours meets while controllers update the object's status (a Deployment
#: rolling out is written several times a second): read again and retry, backing off as
#: client-go's retry.DefaultBackoff does, 3.6 s in all at most.
CONFLICT_RETRIES = 6


@dataclass(frozen=True)
class AppManifests:
    """The three manifests of one app, each the native object (its fields named by the kinds'
    plurals, so code driven by the registry of kinds reads them by plural)."""

    deployments: JSON
    services: JSON
    ingresses: JSON

    def __post_init__(self) -> None:
        names = {_name(part) for _, part in self}
        if len(names) != 1:
            raise ValueError(f"an app's parts share one name, not {sorted(names)}")

    @property
    def name(self) -> str:
        return _name(self.deployments)

    def __getitem__(self, plural: str) -> JSON:
        part: JSON = getattr(self, _field(plural))
        return part

    def __iter__(self) -> Iterator[tuple[str, JSON]]:
        """(plural, manifest), in the order of creation."""
        return ((plural, self[plural]) for plural in ORDER)


@dataclass(frozen=True)
class AppParts:
    """An app's parts as found in Kubernetes: any of them may be missing (None)."""

    deployments: JSON | None = None
    services: JSON | None = None
    ingresses: JSON | None = None

    def __getitem__(self, plural: str) -> JSON | None:
        part: JSON | None = getattr(self, _field(plural))
        return part

    def complete(self) -> AppManifests | None:
        """All three, or None when one is missing."""
        if self.deployments is None or self.services is None or self.ingresses is None:
            return None
        return AppManifests(self.deployments, self.services, self.ingresses)


def _field(plural: str) -> str:
    if plural not in ORDER:
        raise KeyError(plural)
    return plural


def _name(obj: JSON) -> str:
    return str(obj["metadata"]["name"])


def owner_reference(deployment: JSON) -> JSON:
    """A reference to the app's stored Deployment. Not its controller (no controller manages the
    parts), and not blocking the owner's deletion: that would need the tenant to be allowed to
    update the Deployment's finalizers where the API server enforces it, for nothing Kuberth uses
    (an app's DELETE deletes its parts itself)."""
    metadata = deployment["metadata"]
    return {
        "apiVersion": deployment.get("apiVersion", DeploymentStorage.kind.api_version),
        "kind": DeploymentStorage.kind.kind,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": False,
        "blockOwnerDeletion": False,
    }


def with_owner(part: JSON, deployment: JSON) -> JSON:
    """A copy of ``part`` owned by ``deployment``; a reference to an earlier Deployment of that
    name (deleted and made again) is replaced, any other reference kept."""
    reference = owner_reference(deployment)
    owned = copy.deepcopy(part)
    metadata = owned.setdefault("metadata", {})
    others = [
        ref
        for ref in metadata.get("ownerReferences") or []
        if (ref.get("kind"), ref.get("name")) != (reference["kind"], reference["name"])
    ]
    metadata["ownerReferences"] = [*others, reference]
    return owned


def owned_by(part: JSON, deployment: JSON) -> bool:
    """Whether ``part`` carries a reference to this very Deployment (by its uid)."""
    uid = deployment["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in part["metadata"].get("ownerReferences") or [])


#: How an app's change lands in one part: (plural, the part as stored) -> the part wanted.
Change = Callable[[str, JSON], JSON]


class AppStorage:
    """The verbs on apps, each over the parts' own storages, on the event loop."""

    def __init__(self, api: KubernetesApi, *, label: str) -> None:
        """``label``: the label whose value is the app's name on each of its parts."""
        self._storage: dict[str, ResourceStorage] = {
            cls.kind.plural: cls(api) for cls in (DeploymentStorage, ServiceStorage, IngressStorage)
        }
        self._label = label

    def storage(self, plural: str) -> ResourceStorage:
        return self._storage[plural]

    async def acreate(
        self, app: AppManifests, *, namespace: str, identity: Identity | None
    ) -> AppManifests:
        """Create the Deployment, then the Service and the Ingress owned by it; returns what the
        API server stored.

        Raises:
            KuberthError: the failing step's error, prefixed "creating the <kind>", after the
                parts already made were deleted again.
        """
        made: dict[str, JSON] = {}
        try:
            deployment = await self._create_part(DEPLOYMENTS, app.deployments, namespace, identity)
            made[DEPLOYMENTS] = deployment
            for plural in OWNED:
                owned = with_owner(app[plural], deployment)
                made[plural] = await self._create_part(plural, owned, namespace, identity)
        except BaseException:
            for plural in reversed(list(made)):
                storage = self._storage[plural]
                await _undo(
                    partial(storage.adelete, app.name, namespace=namespace, identity=identity)
                )
            raise
        return AppManifests(**made)

    async def aread(self, name: str, *, namespace: str, identity: Identity | None) -> AppParts:
        """The app's three parts, read at once; a missing one is None."""
        found = await asyncio.gather(
            *(
                self._storage[plural].aread(name, namespace=namespace, identity=identity)
                for plural in ORDER
            )
        )
        return AppParts(**dict(zip(ORDER, found, strict=True)))

    async def alist(self, *, namespace: str, identity: Identity | None) -> dict[str, AppParts]:
        """Every app's parts found in the namespace, by app name: three list calls at once,
        whatever the number of apps. An app whose Deployment is gone is left out."""
        lists = await asyncio.gather(
            *(
                self._storage[plural].alist(
                    namespace=namespace, label_selector=self._label, identity=identity
                )
                for plural in ORDER
            )
        )
        found: dict[str, dict[str, JSON]] = {}
        for plural, items in zip(ORDER, lists, strict=True):
            for obj in items.get("items", []):
                app = obj["metadata"]["labels"][self._label]
                found.setdefault(app, {})[plural] = obj
        return {
            name: AppParts(**parts) for name, parts in sorted(found.items()) if DEPLOYMENTS in parts
        }

    async def areplace(
        self, current: AppManifests, change: Change, *, identity: Identity | None
    ) -> AppManifests:
        """Write ``change`` into each part it alters, in the order of creation, conditionally on
        the version read; a part that lost a race with a controller is read again and changed
        again (client-go's RetryOnConflict; the change sets fields, so reapplying it is right).
        The Service and the Ingress keep (or, made before references, get) their reference to
        the Deployment. Returns the parts as stored.

        Raises:
            NotFoundError: a part disappeared meanwhile.
            KuberthError: the failing write's error, prefixed "updating the <kind>", after the
                parts already written were put back as they were.
        """
        deployment = current.deployments
        wanted: dict[str, JSON] = {}
        for plural, part in current:
            wanted[plural] = self._wanted(plural, part, change, deployment)
        final = dict(current)
        written: list[str] = []
        try:
            for plural, part in current:
                if wanted[plural] == part:
                    continue
                final[plural] = await self._step(
                    "updating", plural, self._write(plural, part, change, deployment, identity)
                )
                written.append(plural)
        except BaseException:
            for plural in reversed(written):
                await _undo(partial(self._restore, plural, current[plural], identity))
            raise
        return AppManifests(**final)

    async def adelete(self, name: str, *, namespace: str, identity: Identity | None) -> None:
        """Delete the Ingress, the Service and then the Deployment, each by name (a part already
        gone is done); references or none, nothing of the app is left when this returns.

        Raises:
            KuberthError: the failing step's error, prefixed "deleting the <kind>".
        """
        for plural in reversed(ORDER):
            await self._step(
                "deleting",
                plural,
                self._storage[plural].adelete(name, namespace=namespace, identity=identity),
            )

    async def _create_part(
        self, plural: str, manifest: JSON, namespace: str, identity: Identity | None
    ) -> JSON:
        call = self._storage[plural].acreate(manifest, namespace=namespace, identity=identity)
        made: JSON = await self._step("creating", plural, call)
        return made

    @staticmethod
    def _wanted(plural: str, live: JSON, change: Change, deployment: JSON) -> JSON:
        """The part with the change, and (but the Deployment) owned by the Deployment."""
        wanted = change(plural, live)
        return with_owner(wanted, deployment) if plural in OWNED else wanted

    async def _step(self, verb: str, plural: str, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except KuberthError as error:
            noun = self._storage[plural].kind.kind.lower()
            raise error.prefixed(f"{verb} the {noun}") from error

    async def _write(
        self,
        plural: str,
        live: JSON,
        change: Change,
        deployment: JSON,
        identity: Identity | None,
    ) -> JSON:
        storage = self._storage[plural]
        namespace, name = live["metadata"]["namespace"], _name(live)
        for attempt in range(CONFLICT_RETRIES):
            try:
                return await storage.areplace(
                    self._wanted(plural, live, change, deployment), identity=identity
                )
            except KubernetesConflictError:
                await _back_off(attempt)
                fresh = await storage.aread(name, namespace=namespace, identity=identity)
                if fresh is None:
                    noun = storage.kind.kind.lower()
                    raise NotFoundError(f"{noun} {name} disappeared") from None
                live = fresh
        return await storage.areplace(
            self._wanted(plural, live, change, deployment), identity=identity
        )

    async def _restore(self, plural: str, original: JSON, identity: Identity | None) -> None:
        """Put the original back. Controllers write status all the time, so the version is read
        afresh for each try instead of trusting the one our own write returned."""
        storage = self._storage[plural]
        namespace, name = original["metadata"]["namespace"], _name(original)
        for attempt in range(CONFLICT_RETRIES + 1):
            live = await storage.aread(name, namespace=namespace, identity=identity)
            if live is None:
                return
            restored = copy.deepcopy(original)
            restored["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            try:
                await storage.areplace(restored, identity=identity)
                return
            except KubernetesConflictError:
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


async def _back_off(attempt: int) -> None:
    """10 ms, 30 ms, 90 ms ... (x3 each time), with 10 % jitter, so a burst of status writes
    passes instead of being raced again at once."""
    await asyncio.sleep(0.01 * 3**attempt * (1 + random.random() / 10))  # noqa: S311 - jitter, not a secret
