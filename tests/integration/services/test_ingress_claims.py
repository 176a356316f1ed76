"""The API's host claims: the rules and the claim in one transaction, on SQLite and PostgreSQL,
with the real index of the cluster's Ingresses. A refusal leaves nothing claimed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from kubernetes import client
from sqlalchemy import select

from kuberth.exceptions import ConflictError, ForbiddenError
from kuberth.services.host_claims import IngressClaims
from kuberth.services.hosts import HostClaims, Hosts, hosts_of, ingress_hosts
from kuberth.services.policy import WorkloadPolicy
from kuberth.storage.database.engine import Database
from kuberth.storage.database.models import IngressHost
from kuberth.storage.database.users import NamespaceStore, UserStore
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.informer import Informer
from kuberth.storage.kubernetes.resources import IngressStorage
from tests.integration.objects import native_ingress

pytestmark = pytest.mark.anyio

APPS = "apps.localhost"
SHARED = "shop.example"  # a custom domain verified for both tenants
ALICE, BOB = 7, 8


@pytest.fixture
def host_claims(api: KubernetesApi, database: Database) -> Iterator[HostClaims]:
    index = Informer[Hosts](
        api, IngressStorage.kind, label_selector="", project=ingress_hosts, index=hosts_of
    )
    yield HostClaims(
        asessions=database.asession,
        ingresses=IngressStorage(api),
        index=index,
        index_wait=10,
    )
    index.stop()


def _tenants(database: Database) -> tuple[str, str]:
    """Two tenants' namespaces, recorded as Kuberth records them."""
    alice, bob = f"alice-{secrets.token_hex(3)}", f"bob-{secrets.token_hex(3)}"
    with database.session() as session:
        for github_id, name in ((ALICE, alice), (BOB, bob)):
            UserStore(session).upsert(github_id=github_id, login=name, name=None)
            NamespaceStore(session).record(name=name, owner_id=github_id, personal=True)
    return alice, bob


def _ingress(name: str, *hosts: str) -> JSON:
    """An Ingress with a rule per host, the last one also in a TLS section."""
    manifest = native_ingress(name, hosts[0])
    rule = manifest["spec"]["rules"][0]
    manifest["spec"]["rules"] = [{**rule, "host": host} for host in hosts]
    manifest["spec"]["tls"] = [{"hosts": [hosts[-1]], "secretName": "tls"}]
    return manifest


def _held(database: Database, namespace: str) -> set[tuple[str, str]]:
    with database.session() as session:
        rows = session.scalars(select(IngressHost).where(IngressHost.namespace == namespace))
        return {(r.host, r.ingress) for r in rows}


async def test_a_claim_checks_and_holds_all_its_hosts_or_none(
    database: Database,
    host_claims: HostClaims,
    admin_api: client.ApiClient,
    namespace: str,
) -> None:
    alice, bob = _tenants(database)
    # Straight in Kubernetes, in a namespace Kuberth does not manage: only the index knows it.
    direct = f"direct-{alice}.{APPS}"
    client.NetworkingV1Api(admin_api).create_namespaced_ingress(
        namespace, native_ingress("direct", direct)
    )
    policy = WorkloadPolicy(
        apps_domain=APPS,
        custom_domains={SHARED: [ALICE, BOB]},
        ingress_classes=("nginx",),
        service_types=("ClusterIP",),
    )
    claims = IngressClaims(hosts=host_claims, policy=policy, asessions=database.asession)

    web, www = f"web-{alice}.{APPS}", f"www.{alice}.{APPS}"
    hosts = await claims.aclaim(_ingress("web", web, www, SHARED), namespace=alice, ingress="web")
    assert hosts == sorted([web, www, SHARED])
    assert _held(database, alice) == {(web, "web"), (www, "web"), (SHARED, "web")}

    # Bob's own host and one Alice holds: the conflict names no one of hers, and Bob holds nothing.
    mine = f"web-{bob}.{APPS}"
    with pytest.raises(ConflictError, match=rf"^host {SHARED} is already used by another tenant's"):
        await claims.aclaim(_ingress("web", mine, SHARED), namespace=bob, ingress="web")
    # A host of Alice's subdomain: the rules refuse it, naming its field, and nothing is held.
    with pytest.raises(ForbiddenError, match="outside your subdomain") as outside:
        await claims.aclaim(
            _ingress("api", mine, f"api-{alice}.{APPS}"), namespace=bob, ingress="api"
        )
    assert outside.value.field == "spec.rules[1].host"
    assert _held(database, bob) == set()

    # Held by an Ingress no claim knows: refused after the rules passed, and nothing is held.
    with pytest.raises(ConflictError, match=rf"^host {direct} is already used$"):
        await claims.aclaim(
            _ingress("shop", f"shop-{alice}.{APPS}", direct), namespace=alice, ingress="shop"
        )
    assert _held(database, alice) == {(web, "web"), (www, "web"), (SHARED, "web")}

    # A dry run (the webhook's, for `kubectl --dry-run=server`) checks everything, holds nothing.
    shop = f"shop-{alice}.{APPS}"
    assert await claims.aclaim(
        _ingress("shop", shop), namespace=alice, ingress="shop", dry_run=True
    ) == [shop]
    with pytest.raises(ConflictError, match=rf"^host {direct} is already used$"):
        await claims.aclaim(
            _ingress("shop", shop, direct), namespace=alice, ingress="shop", dry_run=True
        )
    with pytest.raises(ConflictError, match=rf"^host {SHARED} is already used by another tenant's"):
        await claims.aclaim(
            _ingress("web", mine, SHARED), namespace=bob, ingress="web", dry_run=True
        )
    assert _held(database, alice) == {(web, "web"), (www, "web"), (SHARED, "web")}
    assert _held(database, bob) == set()

    await claims.arelease(namespace=alice, ingress="web", keep=[web])
    assert _held(database, alice) == {(web, "web")}


async def test_of_two_tenants_claiming_one_host_at_once_one_holds_it(
    database: Database, host_claims: HostClaims
) -> None:
    alice, bob = _tenants(database)
    race = f"race.{SHARED}"
    policy = WorkloadPolicy(
        apps_domain=APPS,
        custom_domains={SHARED: [ALICE, BOB]},
        ingress_classes=("nginx",),
        service_types=("ClusterIP",),
    )
    claims = IngressClaims(hosts=host_claims, policy=policy, asessions=database.asession)

    answers = await asyncio.gather(
        claims.aclaim(_ingress("web", f"web-{alice}.{APPS}", race), namespace=alice, ingress="web"),
        claims.aclaim(_ingress("web", f"web-{bob}.{APPS}", race), namespace=bob, ingress="web"),
        return_exceptions=True,
    )
    refused = [a for a in answers if isinstance(a, BaseException)]
    assert len(refused) == 1, answers
    assert isinstance(refused[0], ConflictError), refused
    winner, loser = (alice, bob) if refused[0] is answers[1] else (bob, alice)
    assert _held(database, winner) == {(f"web-{winner}.{APPS}", "web"), (race, "web")}
    assert _held(database, loser) == set()  # not even its own host
