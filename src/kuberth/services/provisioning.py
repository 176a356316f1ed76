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

        ``known`` is the name recorded at an earlier sign-in: a renamed login keeps it.

        Raises:
            ConflictError: no name could be claimed (the namespace is still being deleted).
            KuberthError: Kubernetes refused or is unreachable (nothing is handed out then).
        """
        candidates = (
            [known]
            if known
            else personal_name_candidates(
                login, github_id, prefix=self._prefix, reserved=self._reserved
            )
        )
        for name in candidates:
            # A recorded name is read first (someone may have taken it over); a new one is simply
            # created, which costs one request when, as usual, it is free.
            claimed = self._claim(
                name, github_id=github_id, login=login, personal=True, read_first=bool(known)
            )
            if claimed:
                self.apply_baseline(name, github_id=github_id)
                return name
        if known:  # the recorded namespace was taken over by someone else meanwhile
            return self.provision_personal(github_id=github_id, login=login, known=None)
        raise ConflictError(f"no namespace could be claimed for {login}")

    def provision_extra(self, name: str, *, github_id: int, login: str) -> tuple[JSON, JSON]:
        """Create a new namespace for the user; nothing is left behind if any step fails.

        Returns the namespace and its ResourceQuota as Kubernetes answered the writes, so the
        caller need not read them back (as the tenant, such a read can race the RoleBinding just
        written: the API server's authorizer learns of it a moment later).

        Raises:
            ConflictError: the name is taken.
            KuberthError: Kubernetes refused or is unreachable.
        """
        manifest = tenant.namespace(
            name,
            github_id=github_id,
            login=login,
            personal=False,
            policy=self._policy,
        )
        try:
            created = self._namespaces.create(manifest)
        except KubernetesAlreadyExistsError:
            raise ConflictError(f"namespace {name} already exists", field="name") from None
        try:
            applied = self.apply_baseline(name, github_id=github_id)
        except KuberthError:
            self._namespaces.delete(name)
            raise
        return created, applied["ResourceQuota"]

    def apply_baseline(self, name: str, *, github_id: int, access: bool = True) -> dict[str, JSON]:
        """Apply every baseline object (the RoleBinding last); returns them by kind.

        Without ``access`` (a revoked owner), everything but the RoleBinding that grants it.
        """
        return {
            manifest["kind"]: self._baseline[manifest["kind"]].apply(manifest)
            for manifest in tenant.baseline(name, github_id=github_id, policy=self._policy)
            if access or manifest["kind"] != ACCESS_KIND
        }

    def _claim(
        self,
        name: str,
        *,
        github_id: int,
        login: str,
        personal: bool,
        read_first: bool = False,
    ) -> bool:
        """Create the namespace, or adopt it when its owner label carries this user's id.

        Returns False when it belongs to someone else (or to no one: it was not made by Kuberth).
        """
        manifest = tenant.namespace(
            name,
            github_id=github_id,
            login=login,
            personal=personal,
            policy=self._policy,
        )
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
        if not _owned_by(existing, github_id):
            return False
        if existing.get("status", {}).get("phase") == "Terminating":
            raise ConflictError(f"namespace {name} is still being deleted; sign in again shortly")
        self._namespaces.apply(manifest)  # repairs labels someone removed
        return True


def _owned_by(namespace: JSON, github_id: int) -> bool:
    labels = namespace.get("metadata", {}).get("labels") or {}
    return labels.get(tenant.MANAGED_BY) == "kuberth" and labels.get(tenant.OWNER_ID) == str(
        github_id
    )
