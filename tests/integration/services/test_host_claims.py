"""Host claims in the database, made on the event loop as the sync claims are, on SQLite and
PostgreSQL. The index of the cluster's Ingresses is a stand-in (test_hosts has the real one)."""

from __future__ import annotations

from collections.abc import Collection

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

    def require_synced(self, timeout: float) -> None:
        pass

    async def arequire_synced(self, timeout: float) -> None:
        pass

    def holders(self, host: str) -> set[tuple[str, str]]:
        return self._holders.get(host, set())


class StandInIngresses:
    def __init__(self, hosts: dict[tuple[str, str], str]) -> None:
        self._hosts = hosts

    def list(self, *, namespace: str, field_selector: str) -> JSON:
        name = field_selector.removeprefix("metadata.name=")
        host = self._hosts.get((namespace, name))
        return {"items": [] if host is None else [{"spec": {"rules": [{"host": host}]}}]}

    async def alist(self, *, namespace: str, field_selector: str) -> JSON:
        return self.list(namespace=namespace, field_selector=field_selector)


class Twin:
    """One of the twins' claim and release, called the same way."""

    def __init__(self, claims: HostClaims, twin: str) -> None:
        self._claims, self._twin = claims, twin

    async def claim(self, hosts: Collection[str], **where: object) -> None:
        if self._twin == "sync":
            self._claims.claim(hosts, owner_id=7, **where)
        else:
            await self._claims.aclaim(hosts, owner_id=7, **where)

    async def release(self, **where: object) -> None:
        if self._twin == "sync":
            self._claims.release(**where)
        else:
            await self._claims.arelease(**where)


def held(database: Database) -> set[tuple[str, str, str]]:
    with database.session() as session:
        rows = session.scalars(select(IngressHost))
        return {(r.host, r.namespace, r.ingress) for r in rows}


@pytest.mark.parametrize("twin", ["sync", "async"])
async def test_claims_are_all_or_nothing_and_a_conflict_names_its_holder(
    database: Database, twin: str
) -> None:
    with database.session() as session:
        UserStore(session).upsert(github_id=7, login="alice", name=None)
    outside = {"direct.apps.localhost": {("default", "direct")}}
    claims = Twin(
        HostClaims(
            sessions=database.session,
            asessions=database.asession,
            ingresses=StandInIngresses({("default", "direct"): "direct.apps.localhost"}),
            index=StandInIndex(outside),
            index_wait=1,
        ),
        twin,
    )
    await claims.claim(["a.apps.localhost", "b.apps.localhost"], namespace="alice", ingress="web")
    await claims.claim(["a.apps.localhost"], namespace="alice", ingress="web")  # its own: fine
    web = {("a.apps.localhost", "alice", "web"), ("b.apps.localhost", "alice", "web")}
    assert held(database) == web

    with pytest.raises(ConflictError, match=r"^host b.apps.localhost is already used by another"):
        await claims.claim(["c.apps.localhost", "b.apps.localhost"], namespace="bob", ingress="x")
    with pytest.raises(
        ConflictError, match=r"^host a.apps.localhost is already used by ingress web"
    ):
        await claims.claim(["a.apps.localhost"], namespace="alice", ingress="api")
    # Held outside Kuberth, as the index and a read of that Ingress say.
    with pytest.raises(ConflictError, match=r"^host direct.apps.localhost is already used$"):
        await claims.claim(["direct.apps.localhost"], namespace="alice", ingress="api")
    await claims.claim(["d.apps.localhost"], namespace="alice", ingress="api", dry_run=True)
    assert held(database) == web  # none of the refused or dry-run claims holds anything

    await claims.release(namespace="alice", ingress="web", keep=["a.apps.localhost"])
    assert held(database) == {("a.apps.localhost", "alice", "web")}
    await claims.release(namespace="alice", ingress="web", dry_run=True)
    assert held(database) == {("a.apps.localhost", "alice", "web")}
