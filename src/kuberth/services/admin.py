"""What operators do: see every tenant, revoke a user's access and give it back."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kuberth.exceptions import ForbiddenError, NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.builders import tenant
from kuberth.services.principal import Principal
from kuberth.services.provisioning import Provisioner
from kuberth.storage.database.users import NamespaceStore, UserStore
from kuberth.storage.kubernetes.resources import (
    ResourceQuotaStorage,
    RoleBindingStorage,
    ServiceAccountStorage,
)


@dataclass(frozen=True)
class TenantInfo:
    github_id: int
    login: str
    name: str | None
    namespaces: list[str]
    created_at: datetime.datetime
    last_sign_in_at: datetime.datetime
    revoked_at: datetime.datetime | None
    usage: dict[str, dict[str, str | None]]  # resource -> {"used", "hard"}


class AdminService:
    def __init__(
        self,
        *,
        sessions: Callable[[], AbstractContextManager[Session]],
        provisioner: Provisioner,
        role_bindings: RoleBindingStorage,
        service_accounts: ServiceAccountStorage,
        quotas: ResourceQuotaStorage,
        audit: AuditService,
    ) -> None:
        self._sessions = sessions
        self._provisioner = provisioner
        self._role_bindings = role_bindings
        self._service_accounts = service_accounts
        self._quotas = quotas
        self._audit = audit

    @staticmethod
    def _require_admin(principal: Principal) -> None:
        if not principal.is_admin:
            raise ForbiddenError("only operators may do this")

    def tenants(
        self, principal: Principal, *, offset: int, limit: int
    ) -> tuple[int, list[TenantInfo]]:
        """A page of users with their namespaces and quota usage, and the total.

        Usage comes from one cluster-wide list of the tenant quotas, whatever the page size.
        """
        self._require_admin(principal)
        quotas = self._quotas.list(label_selector=f"{tenant.MANAGED_BY}=kuberth")
        by_namespace = {q["metadata"]["namespace"]: q for q in quotas.get("items", [])}
        with self._sessions() as session:
            users = UserStore(session)
            namespaces = NamespaceStore(session)
            page = []
            for u in users.list(offset=offset, limit=limit):
                names = [n.name for n in namespaces.owned_by(u.id)]
                usage = _usage(by_namespace.get(n, {}) for n in names)
                page.append(
                    TenantInfo(
                        u.id,
                        u.login,
                        u.name,
                        names,
                        u.created_at,
                        u.last_sign_in_at,
                        u.revoked_at,
                        usage,
                    )
                )
            return users.count(), page

    def revoke(self, principal: Principal, github_id: int) -> None:
        """Refuse the user's sign-ins, sessions and tokens, and remove its Kubernetes access: the
        tenant RoleBindings (impersonation finds nothing) and the kubeconfig service accounts
        (their tokens stop authenticating, and no new one can be minted)."""
        self._require_admin(principal)
        with self._audit.change(principal, "revoke", "User", None, str(github_id)):
            names = self._set_revoked(github_id, revoked=True)
            account = tenant.kubectl_service_account_name(github_id)
            for namespace in names:
                self._role_bindings.delete(tenant.BASELINE_NAME, namespace=namespace)
                self._role_bindings.delete(account, namespace=namespace)
                self._service_accounts.delete(account, namespace=namespace)

    def restore(self, principal: Principal, github_id: int) -> None:
        """Give the access back: the baseline (with its RoleBinding) is applied again."""
        self._require_admin(principal)
        with self._audit.change(principal, "restore", "User", None, str(github_id)):
            for namespace in self._set_revoked(github_id, revoked=False):
                self._provisioner.apply_baseline(namespace, github_id=github_id)

    def _set_revoked(self, github_id: int, *, revoked: bool) -> list[str]:
        with self._sessions() as session:
            if not UserStore(session).set_revoked(github_id, revoked=revoked):
                raise NotFoundError(f"user {github_id} not found")
            return [n.name for n in NamespaceStore(session).owned_by(github_id)]


_SHOWN = ("pods", "requests.cpu", "requests.memory")


def _usage(quotas: Iterable[dict[str, Any]]) -> dict[str, dict[str, str | None]]:
    """Used and hard figures of the resources operators scan for, from the tenant's first
    namespace that has them (the personal one comes first), as Kubernetes wrote them. `used`
    is None until the quota controller has counted."""
    usage: dict[str, dict[str, str | None]] = {}
    for quota in quotas:
        hard = quota.get("spec", {}).get("hard", {})
        used = quota.get("status", {}).get("used", {})
        for resource in _SHOWN:
            if resource in hard and resource not in usage:
                usage[resource] = {"used": used.get(resource), "hard": hard[resource]}
    return usage
