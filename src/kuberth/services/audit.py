"""Recording and reading the audit log of changes."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kuberth.exceptions import KuberthError
from kuberth.services.principal import Principal
from kuberth.storage.database.audit import AuditStore
from kuberth.storage.database.users import NamespaceStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime.datetime
    actor_id: int
    actor_login: str
    action: str
    kind: str
    namespace: str | None
    name: str | None
    result: str
    detail: str | None


class AuditService:
    def __init__(self, *, sessions: Callable[[], AbstractContextManager[Session]]) -> None:
        self._sessions = sessions

    @contextmanager
    def change(
        self,
        principal: Principal,
        action: str,
        kind: str,
        namespace: str | None,
        name: str | None,
        *,
        detail: str | None = None,
    ) -> Iterator[None]:
        """Run a change and record it, with its outcome, in a transaction of its own; ``detail``
        (why it was made) is recorded when it succeeds, a failure's message otherwise."""
        try:
            yield
        except KuberthError as error:
            self._record(principal, action, kind, namespace, name, error.error, error.message)
            raise
        except Exception:
            self._record(principal, action, kind, namespace, name, "internal_error", None)
            raise
        self._record(principal, action, kind, namespace, name, "ok", detail)

    def done(
        self, principal: Principal, action: str, kind: str, namespace: str | None, name: str | None
    ) -> None:
        """Record a change that has already happened (as part of another, such as a sign-in)."""
        self._record(principal, action, kind, namespace, name, "ok", None)

    def _record(
        self,
        principal: Principal,
        action: str,
        kind: str,
        namespace: str | None,
        name: str | None,
        result: str,
        detail: str | None,
    ) -> None:
        try:
            with self._sessions() as session:
                AuditStore(session).record(
                    actor_id=principal.github_id,
                    actor_login=principal.login,
                    action=action,
                    kind=kind,
                    namespace=namespace,
                    name=name,
                    result=result,
                    detail=detail,
                )
        except KuberthError:
            log.exception(
                "could not record %s %s %s/%s (%s)", action, kind, namespace, name, result
            )
            if result == "ok":
                raise

    def list(
        self, principal: Principal, *, namespace: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The caller's namespaces' log (operators: everyone's), newest first."""
        with self._sessions() as session:
            if principal.is_admin:
                scope = None if namespace is None else [namespace]
                rows = AuditStore(session).list(namespaces=scope, limit=limit)
            else:
                owned = [n.name for n in NamespaceStore(session).owned_by(principal.github_id)]
                scope = [namespace] if namespace in owned else ([] if namespace else owned)
                rows = AuditStore(session).list(
                    namespaces=scope,
                    actor_id=None if namespace else principal.github_id,
                    limit=limit,
                )
            return [
                AuditEntry(
                    r.id,
                    r.at,
                    r.actor_id,
                    r.actor_login,
                    r.action,
                    r.kind,
                    r.namespace,
                    r.name,
                    r.result,
                    r.detail,
                )
                for r in rows
            ]
