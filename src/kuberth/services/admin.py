"""What operators do: see every tenant, revoke a user's access and give it back."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kuberth.exceptions import ForbiddenError, NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.builders import tenant
from kuberth.services.principal import Principal
from kuberth.services.provisioning import Provisioner
from kuberth.storage.database.users import NamespaceStore, UserStore
from kuberth.storage.kubernetes.resources import RoleBindingStorage, ServiceAccountStorage


@dataclass(frozen=True)
class TenantInfo:
    github_id: int
    login: str
    name: str | None
    namespaces: list[str]
    created_at: datetime.datetime
    last_sign_in_at: datetime.datetime
    revoked_at: datetime.datetime | None


class AdminService:
    def __init__(
        self,
        *,
        sessions: Callable[[], AbstractContextManager[Session]],
        provisioner: Provisioner,
        role_bindings: RoleBindingStorage,
        service_accounts: ServiceAccountStorage,
        audit: AuditService,
    ) -> None:
        self._sessions = sessions
        self._provisioner = provisioner
        self._role_bindings = role_bindings
        self._service_accounts = service_accounts
        self._audit = audit

    @staticmethod
    def _require_admin(principal: Principal) -> None:
        if not principal.is_admin:
            raise ForbiddenError("only operators may do this")

    def tenants(
        self, principal: Principal, *, offset: int, limit: int
    ) -> tuple[int, list[TenantInfo]]:
        """A page of users with their namespaces, and the total."""
        self._require_admin(principal)
        with self._sessions() as session:
            users = UserStore(session)
            namespaces = NamespaceStore(session)
            page = [
                TenantInfo(
                    u.id,
                    u.login,
                    u.name,
                    [n.name for n in namespaces.owned_by(u.id)],
                    u.created_at,
                    u.last_sign_in_at,
                    u.revoked_at,
                )
                for u in users.list(offset=offset, limit=limit)
            ]
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
