"""Recording and reading the audit log of changes."""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kuberth.exceptions import KuberthError
from kuberth.services.principal import Principal
from kuberth.storage.database.audit import AuditStore, AuditWriter, alist, audit_event
from kuberth.storage.database.engine import AsyncReads, AsyncWrites
from kuberth.storage.database.users import aowned_by

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
    def __init__(
        self,
        *,
        sessions: Callable[[], AbstractContextManager[Session]],
        writes: AsyncWrites,
        areads: AsyncReads,
    ) -> None:
        self._sessions = sessions
        self._writer = AuditWriter(writes)
        self._areads = areads

    @asynccontextmanager
    async def achange(
        self,
        principal: Principal,
        action: str,
        kind: str,
        namespace: str | None,
        name: str | None,
        *,
        detail: str | None = None,
    ) -> AsyncIterator[None]:
        """Run a change (``async with``) and record it, with its outcome, in a transaction of its
        own (shared with the changes recorded at the same moment, see :class:`AuditWriter`);
        ``detail`` (why it was made) is recorded when it succeeds, a failure's message
        otherwise."""
        try:
            yield
        except Exception as error:
            await self._arecord(principal, action, kind, namespace, name, *_failure(error))
            raise
        await self._arecord(principal, action, kind, namespace, name, "ok", detail)

    def done(
        self, principal: Principal, action: str, kind: str, namespace: str | None, name: str | None
    ) -> None:
        """Record a change that has already happened (as part of another, such as a sign-in)."""
        self._record(principal, action, kind, namespace, name, "ok", None)

    async def adone(
        self, principal: Principal, action: str, kind: str, namespace: str | None, name: str | None
    ) -> None:
        """:meth:`done` on the event loop."""
        await self._arecord(principal, action, kind, namespace, name, "ok", None)

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
        event = _event(principal, action, kind, namespace, name, result, detail)
        with _unrecorded_logged(event), self._sessions() as session:
            AuditStore(session).record(event)

    async def _arecord(
        self,
        principal: Principal,
        action: str,
        kind: str,
        namespace: str | None,
        name: str | None,
        result: str,
        detail: str | None,
    ) -> None:
        event = _event(principal, action, kind, namespace, name, result, detail)
        with _unrecorded_logged(event):
            await self._writer.record(event)

    async def aclose(self) -> None:
        """Wait for the changes already being recorded (at shutdown)."""
        await self._writer.aclose()

    async def list(
        self, principal: Principal, *, namespace: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The caller's namespaces' log (operators: everyone's), newest first, and a tenant's
        own changes outside namespaces (tokens) when no namespace is asked for.

        A tenant's namespaces came with the principal when its request was authenticated (see
        :meth:`NamespaceService.arequire_access`); otherwise they are read.
        """
        async with self._areads() as connection:
            if principal.is_admin:
                scope = None if namespace is None else [namespace]
                rows = await alist(connection, namespaces=scope, limit=limit)
            else:
                owned = principal.namespaces
                if owned is None:
                    mine = await aowned_by(connection, principal.github_id)
                    owned = frozenset(n.name for n in mine)
                scope = [namespace] if namespace in owned else ([] if namespace else list(owned))
                rows = await alist(
                    connection,
                    namespaces=scope,
                    actor_id=None if namespace else principal.github_id,
                    limit=limit,
                )
        return [AuditEntry(**row._mapping) for row in rows]


def _failure(error: Exception) -> tuple[str, str | None]:
    """A failed change's result and detail: the error's code and message, when it is ours."""
    if isinstance(error, KuberthError):
        return error.error, error.message
    return "internal_error", None


def _event(
    principal: Principal,
    action: str,
    kind: str,
    namespace: str | None,
    name: str | None,
    result: str,
    detail: str | None,
) -> dict[str, Any]:
    return audit_event(
        actor_id=principal.github_id,
        actor_login=principal.login,
        action=action,
        kind=kind,
        namespace=namespace,
        name=name,
        result=result,
        detail=detail,
    )


@contextmanager
def _unrecorded_logged(event: dict[str, Any]) -> Iterator[None]:
    """A failure to record a failed change is logged, and the change's own error stands; a
    success that cannot be recorded fails (an unaudited change must not look done)."""
    try:
        yield
    except KuberthError:
        log.exception(
            "could not record %s %s %s/%s (%s)",
            event["action"],
            event["kind"],
            event["namespace"],
            event["name"],
            event["result"],
        )
        if event["result"] == "ok":
            raise
