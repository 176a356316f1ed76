"""Host claims in the database, on SQLite and PostgreSQL. The index of the cluster's Ingresses is
a stand-in (test_ingress_claims has the real one; dry runs are checked there, with the rules)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from kuberth.exceptions import ConflictError
from kuberth.services.hosts import HostClaims
from kuberth.storage.database.engine import Database
from kuberth.storage.database.models import IngressHost
from kuberth.storage.database.users import UserStore
from kuberth.storage.kubernetes.api import JSON

pytestmark = pytest.mark.anyio


class StandInIndex:
    """Every Ingress in the cluster, by host: here one, made outside Kuberth."""

    def __init__(self, holders: dict[str, set[tuple[str, str]]]) -> None:
        self._holders = holders

    async def arequire_synced(self, timeout: float) -> None:
        pass

    def holders(self, host: str) -> set[tuple[str, str]]:
        return self._holders.get(host, set())


class StandInIngresses:
    def __init__(self, hosts: dict[tuple[str, str], str]) -> None:
        self._hosts = hosts

    async def alist(self, *, namespace: str, field_selector: str) -> JSON:
        name = field_selector.removeprefix("metadata.name=")
        host = self._hosts.get((namespace, name))
        return {"items": [] if host is None else [{"spec": {"rules": [{"host": host}]}}]}


def held(database: Database) -> set[tuple[str, str, str]]:
    with database.session() as session:
        rows = session.scalars(select(IngressHost))
        return {(r.host, r.namespace, r.ingress) for r in rows}


async def test_claims_are_all_or_nothing_and_a_conflict_names_its_holder(
    database: Database,
) -> None:
    with database.session() as session:
        UserStore(session).upsert(github_id=7, login="alice", name=None)
    outside = {"direct.apps.localhost": {("default", "direct")}}
    claims = HostClaims(
        asessions=database.asession,
        ingresses=StandInIngresses({("default", "direct"): "direct.apps.localhost"}),
        index=StandInIndex(outside),
        index_wait=1,
    )
    await claims.aclaim(
        ["a.apps.localhost", "b.apps.localhost"], namespace="alice", ingress="web", owner_id=7
    )
    # Its own host again: fine.
    await claims.aclaim(["a.apps.localhost"], namespace="alice", ingress="web", owner_id=7)
    web = {("a.apps.localhost", "alice", "web"), ("b.apps.localhost", "alice", "web")}
    assert held(database) == web

    with pytest.raises(ConflictError, match=r"^host b.apps.localhost is already used by another"):
        await claims.aclaim(
            ["c.apps.localhost", "b.apps.localhost"], namespace="bob", ingress="x", owner_id=7
        )
    with pytest.raises(
        ConflictError, match=r"^host a.apps.localhost is already used by ingress web"
    ):
        await claims.aclaim(["a.apps.localhost"], namespace="alice", ingress="api", owner_id=7)
    # Held outside Kuberth, as the index and a read of that Ingress say.
    with pytest.raises(ConflictError, match=r"^host direct.apps.localhost is already used$"):
        await claims.aclaim(["direct.apps.localhost"], namespace="alice", ingress="api", owner_id=7)
    assert held(database) == web  # none of the refused claims holds anything

    await claims.arelease(namespace="alice", ingress="web", keep=["a.apps.localhost"])
    assert held(database) == {("a.apps.localhost", "alice", "web")}
