"""Who is making a request, and whom Kubernetes sees for them."""

from __future__ import annotations

from dataclasses import dataclass, field

from kuberth.services.builders.tenant import TENANTS_GROUP, tenant_user
from kuberth.storage.kubernetes.api import Identity


@dataclass(frozen=True)
class Principal:
    """A signed-in user: keyed on the GitHub id; the login is for display."""

    github_id: int
    login: str
    name: str | None
    is_admin: bool
    #: The namespaces the user owned when the request was authenticated (read in the same
    #: statement as the token or session); None where they were not read.
    namespaces: frozenset[str] | None = field(default=None, compare=False)

    @property
    def kubernetes_identity(self) -> Identity | None:
        """Tenants act through impersonation, so RBAC enforces their boundary; operators act as
        Kuberth itself (None)."""
        if self.is_admin:
            return None
        return Identity(user=tenant_user(self.github_id), groups=(TENANTS_GROUP,))
