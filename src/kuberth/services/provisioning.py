"""Provisioning tenant namespaces: claim a name, label it with its owner, apply the baseline.

Runs with Kuberth's own identity (the only thing it does besides impersonating). Every step is
idempotent, so a second sign-in, a concurrent one, or a rerun after a crash converges.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kuberth.exceptions import ConflictError, KuberthError
from kuberth.services.builders import tenant
from kuberth.services.naming import personal_name_candidates
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.errors import KubernetesAlreadyExistsError
from kuberth.storage.kubernetes.namespaces import NamespaceStorage
from kuberth.storage.kubernetes.resources import ResourceStorage

log = logging.getLogger(__name__)


#: The baseline piece that gives the owner access to a namespace (the tenant RoleBinding).
ACCESS_KIND = "RoleBinding"


class Provisioner:
    def __init__(
        self,
        *,
        namespaces: NamespaceStorage,
        cluster_storage: dict[str, ResourceStorage],
        cluster_objects: list[tenant.Manifest],
        baseline_storage: dict[str, ResourceStorage],
        policy: tenant.TenantPolicy,
        prefix: str,
        reserved: Sequence[str],
    ) -> None:
        self._namespaces = namespaces
        self._cluster_storage = cluster_storage
        self._cluster_objects = cluster_objects
        self._baseline = baseline_storage
        self._policy = policy
        self._prefix = prefix
        self._reserved = tuple(reserved)

    def ensure_cluster_objects(self) -> None:
        """Apply the cluster-wide tenant role and admission policies (idempotent)."""
        for manifest in self._cluster_objects:
            self._cluster_storage[manifest["kind"]].apply(manifest)

    def provision_personal(self, *, github_id: int, login: str, known: str | None) -> str:
        """Make sure the user's personal namespace exists with its baseline; return its name.

        ``known`` is the name recorded at an earlier sign-in: a renamed login keeps it. (The
        synchronous twin of :meth:`aprovision_personal`, for callers in threads: the sign-in's
        sync twin, which the scale benchmark populates with.)

        Raises:
            ConflictError: no name could be claimed (the namespace is still being deleted).
            KuberthError: Kubernetes refused or is unreachable (nothing is handed out then).
        """
        for name in self._candidates(github_id=github_id, login=login, known=known):
            # A recorded name is read first (someone may have taken it over); a new one is simply
            # created, which costs one request when, as usual, it is free.
            manifest = self._manifest(name, github_id=github_id, login=login, personal=True)
            if self._claim(manifest, github_id=github_id, read_first=bool(known)):
                self.apply_baseline(name, github_id=github_id)
                return name
        if known:  # the recorded namespace was taken over by someone else meanwhile
            return self.provision_personal(github_id=github_id, login=login, known=None)
        raise ConflictError(f"no namespace could be claimed for {login}")

    async def aprovision_personal(self, *, github_id: int, login: str, known: str | None) -> str:
        """:meth:`provision_personal` on the event loop (a sign-in).

        Raises:
            ConflictError: no name could be claimed (the namespace is still being deleted).
            KuberthError: Kubernetes refused or is unreachable (nothing is handed out then).
        """
        for name in self._candidates(github_id=github_id, login=login, known=known):
            manifest = self._manifest(name, github_id=github_id, login=login, personal=True)
            if await self._aclaim(manifest, github_id=github_id, read_first=bool(known)):
                await self.aapply_baseline(name, github_id=github_id)
                return name
        if known:
            return await self.aprovision_personal(github_id=github_id, login=login, known=None)
        raise ConflictError(f"no namespace could be claimed for {login}")

    async def aprovision_extra(self, name: str, *, github_id: int, login: str) -> tuple[JSON, JSON]:
        """Create a new namespace for the user, on the event loop; nothing is left behind if any
        step fails (the caller shields it from cancellation, see NamespaceService.acreate).

        Returns the namespace and its ResourceQuota as Kubernetes answered the writes, so the
        caller need not read them back (as the tenant, such a read can race the RoleBinding just
        written: the API server's authorizer learns of it a moment later).

        Raises:
            ConflictError: the name is taken.
            KuberthError: Kubernetes refused or is unreachable.
        """
        manifest = self._manifest(name, github_id=github_id, login=login, personal=False)
        try:
            created = await self._namespaces.acreate(manifest)
        except KubernetesAlreadyExistsError:
            raise ConflictError(f"namespace {name} already exists", field="name") from None
        try:
            applied = await self.aapply_baseline(name, github_id=github_id)
        except KuberthError:
            await self._namespaces.adelete(name)
            raise
        return created, applied["ResourceQuota"]

    def apply_baseline(self, name: str, *, github_id: int, access: bool = True) -> dict[str, JSON]:
        """Apply every baseline object (the RoleBinding last); returns them by kind.

        Without ``access`` (a revoked owner), everything but the RoleBinding that grants it.
        """
        return {
            manifest["kind"]: self._baseline[manifest["kind"]].apply(manifest)
            for manifest in self._baseline_manifests(name, github_id=github_id, access=access)
        }

    async def aapply_baseline(
        self, name: str, *, github_id: int, access: bool = True
    ) -> dict[str, JSON]:
        """:meth:`apply_baseline` on the event loop: one apply after the other, so the RoleBinding
        still comes last."""
        return {
            manifest["kind"]: await self._baseline[manifest["kind"]].aapply(manifest)
            for manifest in self._baseline_manifests(name, github_id=github_id, access=access)
        }

    def _baseline_manifests(self, name: str, *, github_id: int, access: bool) -> list[JSON]:
        return [
            manifest
            for manifest in tenant.baseline(name, github_id=github_id, policy=self._policy)
            if access or manifest["kind"] != ACCESS_KIND
        ]

    def _candidates(self, *, github_id: int, login: str, known: str | None) -> list[str]:
        """The personal namespace's names to try, in order: the recorded one, else new ones."""
        if known:
            return [known]
        return personal_name_candidates(
            login, github_id, prefix=self._prefix, reserved=self._reserved
        )

    def _manifest(self, name: str, *, github_id: int, login: str, personal: bool) -> JSON:
        return tenant.namespace(
            name, github_id=github_id, login=login, personal=personal, policy=self._policy
        )

    def _claim(self, manifest: JSON, *, github_id: int, read_first: bool = False) -> bool:
        """Create the namespace, or adopt it when its owner label carries this user's id.

        Returns False when it belongs to someone else (or to no one: it was not made by Kuberth).
        """
        name = manifest["metadata"]["name"]
        existing = self._namespaces.read(name) if read_first else None
        if existing is None:
            try:
                self._namespaces.create(manifest)
                return True
            except KubernetesAlreadyExistsError:
                existing = self._namespaces.read(name)
                if existing is None:  # deleted between our create and read: try once more
                    self._namespaces.create(manifest)
                    return True
        if not _adoptable(existing, github_id):
            return False
        self._namespaces.apply(manifest)  # repairs labels someone removed
        return True

    async def _aclaim(self, manifest: JSON, *, github_id: int, read_first: bool = False) -> bool:
        """:meth:`_claim` on the event loop."""
        name = manifest["metadata"]["name"]
        existing = await self._namespaces.aread(name) if read_first else None
        if existing is None:
            try:
                await self._namespaces.acreate(manifest)
                return True
            except KubernetesAlreadyExistsError:
                existing = await self._namespaces.aread(name)
                if existing is None:  # deleted between our create and read: try once more
                    await self._namespaces.acreate(manifest)
                    return True
        if not _adoptable(existing, github_id):
            return False
        await self._namespaces.aapply(manifest)  # repairs labels someone removed
        return True


def _adoptable(existing: JSON, github_id: int) -> bool:
    """Whether an existing namespace is this user's to adopt (False: someone else's).

    Raises:
        ConflictError: it is, but it is still being deleted.
    """
    if not _owned_by(existing, github_id):
        return False
    if existing.get("status", {}).get("phase") == "Terminating":
        name = existing["metadata"]["name"]
        raise ConflictError(f"namespace {name} is still being deleted; sign in again shortly")
    return True


def _owned_by(namespace: JSON, github_id: int) -> bool:
    labels = namespace.get("metadata", {}).get("labels") or {}
    return labels.get(tenant.MANAGED_BY) == "kuberth" and labels.get(tenant.OWNER_ID) == str(
        github_id
    )
