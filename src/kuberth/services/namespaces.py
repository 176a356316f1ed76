"""The namespace API's domain: list, read, create and delete a tenant's namespaces.

Ownership is decided by the database (mirroring the namespaces' owner labels): a namespace that is
not the caller's is "not found", never "forbidden", so nobody learns what other tenants have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy.orm import Session

from kuberth.exceptions import ForbiddenError, InvalidInputError, NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.builders.tenant import BASELINE_NAME
from kuberth.services.naming import invalid_name_reason, is_reserved
from kuberth.services.principal import Principal
from kuberth.services.provisioning import Provisioner
from kuberth.storage.database.engine import AsyncReads, AsyncSessions, Reads
from kuberth.storage.database.models import TenantNamespace
from kuberth.storage.database.users import (
    NamespaceStore,
    afind_namespace,
    aforget,
    anamespace_page,
    aowned_by,
    find_namespace,
)
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.namespaces import NamespaceStorage
from kuberth.storage.kubernetes.resources import ResourceQuotaStorage


@dataclass(frozen=True)
class NamespaceSummary:
    name: str
    personal: bool
    owner_id: int
    phase: str | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    finalizers: list[str] = field(default_factory=list)
    quota: dict[str, dict[str, str | None]] = field(default_factory=dict)
    created_at: str | None = None


@dataclass(frozen=True)
class DeleteOutcome:
    gone: bool
    namespace: NamespaceSummary


class NamespaceService:
    def __init__(
        self,
        *,
        sessions: Callable[[], AbstractContextManager[Session]],
        asessions: AsyncSessions,
        reads: Reads,
        areads: AsyncReads,
        namespaces: NamespaceStorage,
        quotas: ResourceQuotaStorage,
        provisioner: Provisioner,
        reserved: tuple[str, ...],
        max_per_user: int,
        delete_timeout: float,
        audit: AuditService,
    ) -> None:
        self._sessions = sessions
        self._asessions = asessions
        self._reads = reads
        self._areads = areads
        self._namespaces = namespaces
        self._quotas = quotas
        self._provisioner = provisioner
        self._reserved = reserved
        self._max_per_user = max_per_user
        self.delete_timeout = delete_timeout
        self._audit = audit

    async def owned(self, principal: Principal) -> list[NamespaceSummary]:
        """The caller's own namespaces, operators too (their dashboard; /admin has the rest), on
        the event loop: one query."""
        async with self._areads() as connection:
            rows = await aowned_by(connection, principal.github_id)
        return [_summary(row) for row in rows]

    async def alist(
        self, principal: Principal, *, offset: int = 0, limit: int = 100, own: bool = False
    ) -> tuple[int, list[NamespaceSummary]]:
        """:meth:`list` (below) on the event loop, in one query (an operator's page past the end:
        two)."""
        async with self._areads() as connection:
            if principal.is_admin and not own:
                total, rows = await anamespace_page(connection, offset=offset, limit=limit)
            else:
                owned = await aowned_by(connection, principal.github_id)
                total, rows = len(owned), owned[offset : offset + limit]
        return total, [_summary(row) for row in rows]

    def list(
        self, principal: Principal, *, offset: int = 0, limit: int = 100, own: bool = False
    ) -> tuple[int, list[NamespaceSummary]]:
        """A page of the caller's namespaces, and how many there are, from the database.

        Operators get every tenant namespace (by name), unless ``own``; a tenant has a handful.
        """
        with self._sessions() as session:
            store = NamespaceStore(session)
            if principal.is_admin and not own:
                total, rows = store.count(), store.page(offset=offset, limit=limit)
            else:
                owned = store.owned_by(principal.github_id)
                total, rows = len(owned), owned[offset : offset + limit]
        return total, [_summary(row) for row in rows]

    async def get(self, principal: Principal, name: str) -> NamespaceSummary:
        """Phase, conditions and quota usage, read as the caller (two API calls, at once), on
        the event loop.

        Raises:
            NotFoundError: no such namespace, or not the caller's.
        """
        row = await self._accessible_row(principal, name)
        identity = principal.kubernetes_identity
        reads = asyncio.gather(
            self._namespaces.aread(name, identity=identity),
            self._quotas.aread(BASELINE_NAME, namespace=name, identity=identity),
            return_exceptions=True,
        )
        live, quota = await reads
        if isinstance(live, ForbiddenError):
            # A terminating namespace loses the tenant's RoleBinding before it is gone; its
            # progress is still the owner's to see (ownership was checked above).
            forbidden, live = live, await self._namespaces.aread(name)
            if live is None:
                await self._aforget(name)
                raise NotFoundError(f"namespace {name} not found") from None
            if live.get("status", {}).get("phase") != "Terminating":
                raise forbidden
            return _summary(row, live)
        if isinstance(live, BaseException):
            raise live
        if live is None:
            await self._aforget(name)  # deleted behind Kuberth's back (e.g. with kubectl)
            raise NotFoundError(f"namespace {name} not found")
        if isinstance(quota, BaseException):
            raise quota
        return _summary(row, live, quota)

    async def acreate(self, principal: Principal, name: str) -> NamespaceSummary:
        """A namespace under the caller's prefix (operators: any name that is not reserved), on
        the event loop.

        Once past the name's check it runs to the end whatever becomes of the request, as the
        worker thread it ran in did: cancelled half-way (the client gone, a shutdown), it would
        leave a namespace without its baseline, row or audit record. So it is shielded.

        Raises:
            InvalidInputError: not a valid namespace name.
            ForbiddenError: reserved, outside the caller's prefix, or over the limit.
            ConflictError: the name is taken.
        """
        if reason := invalid_name_reason(name):
            raise InvalidInputError(f"name {reason}", field="name")
        with anyio.CancelScope(shield=True):
            async with self._audit.achange(principal, "create", "Namespace", name, name):
                created = await self._acreate(principal, name)
        return created

    async def _acreate(self, principal: Principal, name: str) -> NamespaceSummary:
        if is_reserved(name, extra=self._reserved):
            raise ForbiddenError(f"namespace {name} is reserved", field="name")
        async with self._asessions() as session:
            personal, count = await session.run_sync(_personal_and_count, principal.github_id)
        if not principal.is_admin:
            if personal is None:
                raise ForbiddenError("sign in again to get your personal namespace first")
            if not name.startswith(f"{personal.name}-"):
                raise ForbiddenError(
                    f"your namespaces must be named {personal.name}-<suffix>", field="name"
                )
            if count >= self._max_per_user:
                raise ForbiddenError(f"you already have {count} namespaces, the most allowed")
        live, quota = await self._provisioner.aprovision_extra(
            name, github_id=principal.github_id, login=principal.login
        )
        async with self._asessions() as session:
            row = await session.run_sync(_record_extra, name, principal.github_id)
        # From the writes' own answers: no read back as the tenant (see aprovision_extra).
        return _summary(row, live, quota)

    async def delete(
        self, principal: Principal, name: str, *, wait: bool, timeout: float
    ) -> DeleteOutcome:
        """Delete as the caller; with ``wait``, watch until it is gone or ``timeout`` passes. On
        the event loop, holding no thread however long it waits.

        Raises:
            NotFoundError: no such namespace, not the caller's, or already gone.
        """
        row = await self._accessible_row(principal, name)
        async with self._audit.achange(principal, "delete", "Namespace", name, name):
            deleted = await self._namespaces.adelete(name, identity=principal.kubernetes_identity)
        if deleted is None:
            await self._aforget(name)
            raise NotFoundError(f"namespace {name} not found")
        if not wait:
            return DeleteOutcome(gone=False, namespace=_summary(row, deleted))
        watched = await self._namespaces.wait_for_deletion(name, since=deleted, timeout=timeout)
        gone = watched.ended == "deleted"
        if gone:
            await self._aforget(name)
        return DeleteOutcome(gone=gone, namespace=_summary(row, watched.last_seen))

    def require_access(self, principal: Principal, name: str) -> TenantNamespace:
        """The namespace, when it is the caller's (or the caller is an operator).

        Raises:
            NotFoundError: otherwise, exactly as for a namespace that does not exist.
        """
        with self._reads() as connection:
            return _accessible(principal, name, find_namespace(connection, name))

    async def arequire_access(self, principal: Principal, name: str) -> int:
        """:meth:`require_access` on the event loop; returns the namespace's owner's GitHub id.

        A tenant's own namespaces came with the principal (read in the statement that checked
        its token or session), so a request in one of them asks the database nothing more.
        Any other name reads its row: the principal may be a few seconds old (a token's verdict
        is kept, see :mod:`~kuberth.services.token_cache`) and the namespace made since on
        another replica; and an operator may act in anyone's.

        Raises:
            NotFoundError: not the caller's, exactly as for a namespace that does not exist.
        """
        if principal.namespaces is not None and name in principal.namespaces:
            return principal.github_id
        return (await self._accessible_row(principal, name)).owner_id

    async def _accessible_row(self, principal: Principal, name: str) -> TenantNamespace:
        """The namespace's row, when it is the caller's (or the caller is an operator).

        Raises:
            NotFoundError: otherwise, exactly as for a namespace that does not exist.
        """
        async with self._areads() as connection:
            return _accessible(principal, name, await afind_namespace(connection, name))

    async def _aforget(self, name: str) -> None:
        """Drop the namespace's row: it is gone from Kubernetes."""
        async with self._asessions() as session:
            await aforget(session, name)


def _personal_and_count(session: Session, owner_id: int) -> tuple[TenantNamespace | None, int]:
    """The user's personal namespace and how many they have (run in an async session)."""
    store = NamespaceStore(session)
    return store.personal(owner_id), store.count_owned_by(owner_id)


def _record_extra(session: Session, name: str, owner_id: int) -> TenantNamespace:
    """Record a new namespace of the user's; its row (run in an async session)."""
    store = NamespaceStore(session)
    store.record(name=name, owner_id=owner_id, personal=False)
    row = store.get(name)
    assert row is not None
    return row


def _accessible(principal: Principal, name: str, row: TenantNamespace | None) -> TenantNamespace:
    """Raises NotFoundError unless the namespace is the caller's (or the caller an operator)."""
    if row is None or (row.owner_id != principal.github_id and not principal.is_admin):
        raise NotFoundError(f"namespace {name} not found")
    return row


def _summary(
    row: TenantNamespace, live: JSON | None = None, quota: JSON | None = None
) -> NamespaceSummary:
    if live is None:
        return NamespaceSummary(name=row.name, personal=row.personal, owner_id=row.owner_id)
    status = live.get("status", {})
    usage: dict[str, dict[str, str | None]] = {}
    if quota:
        # `used` is filled in by the quota controller shortly after the quota is created.
        hard = quota.get("spec", {}).get("hard", {})
        used = quota.get("status", {}).get("used", {})
        usage = {k: {"hard": v, "used": used.get(k)} for k, v in sorted(hard.items())}
    return NamespaceSummary(
        name=row.name,
        personal=row.personal,
        owner_id=row.owner_id,
        phase=status.get("phase"),
        conditions=status.get("conditions", []),
        finalizers=live.get("spec", {}).get("finalizers", []),
        quota=usage,
        created_at=live.get("metadata", {}).get("creationTimestamp"),
    )
