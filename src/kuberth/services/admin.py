"""What operators do: see every tenant, revoke a user's access and give it back."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kuberth.exceptions import ForbiddenError, NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.builders import tenant
from kuberth.services.principal import Principal
from kuberth.services.provisioning import Provisioner
from kuberth.services.suspension import AppSuspension
from kuberth.storage.database.engine import AsyncReads, AsyncSessions
from kuberth.storage.database.users import NamespaceStore, UserStore, atenant_page
from kuberth.storage.database.web_sessions import WebSessionStore
from kuberth.storage.kubernetes.errors import (
    KubernetesForbiddenError,
    KubernetesNamespaceTerminatingError,
)
from kuberth.storage.kubernetes.informer import Informer
from kuberth.storage.kubernetes.resources import RoleBindingStorage, ServiceAccountStorage

log = logging.getLogger(__name__)

#: The quota figures operators scan for, by resource: {"used", "hard"} (``used`` is None until the
#: quota controller has counted).
Usage = dict[str, dict[str, str | None]]


@dataclass(frozen=True)
class TenantInfo:
    github_id: int
    login: str
    name: str | None
    namespaces: list[str]
    created_at: datetime.datetime
    last_sign_in_at: datetime.datetime
    revoked_at: datetime.datetime | None
    #: ``operator`` or ``signup-rules`` (the user no longer passed the sign-up rules)
    revoked_reason: str | None
    usage: Usage  # resource -> {"used", "hard"}


class AdminService:
    def __init__(
        self,
        *,
        asessions: AsyncSessions,
        areads: AsyncReads,
        provisioner: Provisioner,
        role_bindings: RoleBindingStorage,
        service_accounts: ServiceAccountStorage,
        quotas: Informer[Usage],
        audit: AuditService,
        apps: AppSuspension,
        cache_wait: float = 10.0,
    ) -> None:
        self._asessions = asessions
        self._areads = areads
        self._apps = apps
        self._provisioner = provisioner
        self._role_bindings = role_bindings
        self._service_accounts = service_accounts
        self._quotas = quotas
        self._audit = audit
        self._cache_wait = cache_wait

    @staticmethod
    def _require_admin(principal: Principal) -> None:
        if not principal.is_admin:
            raise ForbiddenError("only operators may do this")

    async def tenants(
        self, principal: Principal, *, offset: int, limit: int
    ) -> tuple[int, list[TenantInfo]]:
        """A page of users with their namespaces and quota usage, and the total.

        On the event loop, one query and no Kubernetes request, whatever the number of tenants:
        usage comes from the watch-fed copy of the tenant quotas (read as Kuberth, which is fine
        here: only operators get this far). It starts with the first call, which waits for its
        first list.

        Raises:
            ForbiddenError: the caller is not an operator.
            KubernetesUnavailableError: the copy of the quotas could not be read in time.
        """
        self._require_admin(principal)
        await self._quotas.arequire_synced(self._cache_wait)
        async with self._areads() as connection:
            total, page = await atenant_page(connection, offset=offset, limit=limit)
        tenants = []
        for u, names in page:
            tenants.append(
                TenantInfo(
                    u.id,
                    u.login,
                    u.name,
                    names,
                    u.created_at,
                    u.last_sign_in_at,
                    u.revoked_at,
                    u.revoked_reason,
                    _first_usage(
                        self._quotas.get(tenant.BASELINE_NAME, namespace=n) for n in names
                    ),
                )
            )
        return total, tenants

    async def arevoke(self, principal: Principal, github_id: int) -> None:
        """Refuse the user's sign-ins, sessions and tokens, and remove its Kubernetes access: the
        kubeconfig service accounts (their tokens stop authenticating, and no new one can be
        minted) and the tenant RoleBindings (impersonation finds nothing). Their apps stop
        serving: every Deployment is scaled to zero, its count remembered for a restore. On the
        event loop.

        Raises:
            ForbiddenError: the caller is not an operator.
            NotFoundError: no such user.
        """
        self._require_admin(principal)
        async with self._audit.achange(principal, "revoke", "User", None, str(github_id)):
            for namespace in await self._aset_revoked(github_id, revoked=True):
                await self.awithdraw(namespace, github_id=github_id)

    async def awithdraw(self, namespace: str, *, github_id: int) -> None:
        """Take a revoked user's access and apps away in one namespace; running it again converges.

        In this order: the kubeconfig service account and its RoleBinding (kubectl stops), the
        apps (scaled to zero as the tenant, whom only Kuberth can act as and who is refused by
        now), then the tenant RoleBinding. A failure leaves the RoleBinding, so a rerun (or the
        reconciler) can still stop the apps; a namespace without it was done before. For an
        operator's revoke, the reconcile pass, the sign-up re-check and its sweep.
        """
        account = tenant.kubectl_service_account_name(github_id)
        await self._role_bindings.adelete(account, namespace=namespace)
        await self._service_accounts.adelete(account, namespace=namespace)
        try:
            await self._apps.astop(namespace, github_id=github_id)
        except KubernetesForbiddenError:  # the tenant RoleBinding is gone already: done before
            log.info("apps in %s not stopped: user %s has no access there", namespace, github_id)
        await self._role_bindings.adelete(tenant.BASELINE_NAME, namespace=namespace)

    async def arestore(self, principal: Principal, github_id: int) -> None:
        """Give the access back: the baseline (with its RoleBinding) is applied again, then the
        apps a revoke stopped get their replicas back. On the event loop.

        Raises:
            ForbiddenError: the caller is not an operator.
            NotFoundError: no such user.
        """
        self._require_admin(principal)
        async with self._audit.achange(principal, "restore", "User", None, str(github_id)):
            for namespace in await self._aset_revoked(github_id, revoked=False):
                await self.agive_back(namespace, github_id=github_id)

    async def agive_back(self, namespace: str, *, github_id: int) -> None:
        """The baseline with its RoleBinding, then the apps as they were before the revoke."""
        try:
            await self._provisioner.aapply_baseline(namespace, github_id=github_id)
        except KubernetesNamespaceTerminatingError:
            return  # going away: there is no access to give back in it
        await self._apps.aresume(namespace, github_id=github_id)

    async def _aset_revoked(self, github_id: int, *, revoked: bool) -> list[str]:
        async with self._asessions() as session:
            return await session.run_sync(_set_revoked, github_id, revoked)


def _set_revoked(session: Session, github_id: int, revoked: bool) -> list[str]:
    """Mark (or unmark) the user revoked; the names of their namespaces (in an async session).

    Raises:
        NotFoundError: no such user.
    """
    if not UserStore(session).set_revoked(github_id, revoked=revoked):
        raise NotFoundError(f"user {github_id} not found")
    if revoked:  # every signed-in browser of theirs, ended (a restore does not revive them)
        WebSessionStore(session).end_all(github_id)
    return [n.name for n in NamespaceStore(session).owned_by(github_id)]


_SHOWN = ("pods", "requests.cpu", "requests.memory")


def quota_usage(quota: dict[str, Any]) -> Usage:
    """What the operators' list keeps of a tenant quota (the informer's projection): the used and
    hard figures of the resources operators scan for, as Kubernetes wrote them."""
    hard = quota.get("spec", {}).get("hard", {})
    used = quota.get("status", {}).get("used", {})
    return {r: {"used": used.get(r), "hard": hard[r]} for r in _SHOWN if r in hard}


def _first_usage(usages: Iterable[Usage | None]) -> Usage:
    """Each resource from the tenant's first namespace that has it (the personal one first)."""
    merged: Usage = {}
    for usage in usages:
        for resource, figures in (usage or {}).items():
            merged.setdefault(resource, figures)
    return merged
