"""Namespace-scoped kubeconfigs with short-lived tokens, and taking that access back."""

from __future__ import annotations

import yaml

from kuberth.services.audit import AuditService
from kuberth.services.builders import tenant
from kuberth.services.builders.kubeconfig import kubeconfig
from kuberth.services.namespaces import NamespaceService
from kuberth.services.principal import Principal
from kuberth.storage.kubernetes.resources import RoleBindingStorage, ServiceAccountStorage


class KubeconfigService:
    def __init__(
        self,
        *,
        namespaces: NamespaceService,
        service_accounts: ServiceAccountStorage,
        role_bindings: RoleBindingStorage,
        audit: AuditService,
        server_url: str,
        ca_pem: bytes | None,
        lifetime: int,
    ) -> None:
        self._namespaces = namespaces
        self._service_accounts = service_accounts
        self._role_bindings = role_bindings
        self._audit = audit
        self._server_url = server_url
        self._ca_pem = ca_pem
        self.lifetime = lifetime

    async def issue(self, principal: Principal, namespace: str) -> str:
        """A kubeconfig for this namespace, valid for :attr:`lifetime` seconds (4 API calls), on
        the event loop.

        The service account and its RoleBinding are provisioning, done as Kuberth; the token comes
        from the TokenRequest API, so it is bound to the service account and dies with it.

        Raises:
            NotFoundError: not the caller's namespace.
        """
        owner = await self._namespaces.arequire_access(principal, namespace)
        async with self._audit.achange(principal, "issue", "Kubeconfig", namespace, None):
            await self._service_accounts.aapply(
                tenant.kubectl_service_account(namespace, github_id=owner)
            )
            await self._role_bindings.aapply(
                tenant.kubectl_role_binding(namespace, github_id=owner)
            )
            request = await self._service_accounts.acreate_token(
                tenant.kubectl_service_account_name(owner),
                namespace=namespace,
                expiration_seconds=self.lifetime,
            )
        config = kubeconfig(
            server=self._server_url,
            ca_pem=self._ca_pem,
            token=request["status"]["token"],
            namespace=namespace,
            user=f"{principal.login}@{namespace}",
        )
        return yaml.safe_dump(config, sort_keys=False)

    async def revoke(self, principal: Principal, namespace: str) -> None:
        """Delete the kubeconfig identity: every token issued for it stops working at once."""
        owner = await self._namespaces.arequire_access(principal, namespace)
        name = tenant.kubectl_service_account_name(owner)
        async with self._audit.achange(principal, "revoke", "Kubeconfig", namespace, None):
            await self._role_bindings.adelete(name, namespace=namespace)
            await self._service_accounts.adelete(name, namespace=namespace)
