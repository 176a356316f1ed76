"""Who may use a namespace, decided on the event loop as the sync check does, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from kuberth.exceptions import NotFoundError
from kuberth.services.audit import AuditService
from kuberth.services.namespaces import NamespaceService
from kuberth.services.principal import Principal
from kuberth.storage.database.engine import Database
from kuberth.storage.database.models import TenantNamespace
from kuberth.storage.database.users import NamespaceStore, UserStore
from tests.integration.services.twins import same_answer

pytestmark = pytest.mark.anyio

ALICE = Principal(7, "alice", None, is_admin=False)
OPERATOR = Principal(9, "carol", None, is_admin=True)


def fields(row: TenantNamespace) -> tuple[str, int, bool]:
    return row.name, row.owner_id, row.personal


async def test_own_namespaces_are_found_and_others_are_not_there(database: Database) -> None:
    with database.session() as session:
        for github_id, login in [(7, "alice"), (8, "bob")]:
            UserStore(session).upsert(github_id=github_id, login=login, name=None)
            NamespaceStore(session).record(name=login, owner_id=github_id, personal=True)
    namespaces = NamespaceService(
        sessions=database.session,
        asessions=database.asession,
        reads=database.read,
        areads=database.aread,
        namespaces=None,
        quotas=None,
        provisioner=None,
        reserved=(),
        max_per_user=5,
        delete_timeout=1,
        audit=AuditService(sessions=database.session, asessions=database.asession),
    )

    async def access(principal: Principal, name: str) -> object:
        async def asynchronous() -> object:
            return fields(await namespaces.arequire_access(principal, name))

        answer = await same_answer(
            lambda: fields(namespaces.require_access(principal, name)), asynchronous
        )
        return answer.message if isinstance(answer, NotFoundError) else answer

    assert await access(ALICE, "alice") == ("alice", 7, True)
    # Another tenant's namespace is "not found", exactly as one that does not exist.
    assert await access(ALICE, "bob") == "namespace bob not found"
    assert await access(ALICE, "nobody") == "namespace nobody not found"
    assert await access(OPERATOR, "bob") == ("bob", 8, True)
