"""The reconciler against the real control plane: it repairs, records, forgets, and is cheap."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client
from prometheus_client import REGISTRY

from kuberth.http.services import Services, build_services
from kuberth.services.builders.tenant import BASELINE_NAME
from kuberth.services.suspension import REPLICAS_BEFORE_REVOKE
from kuberth.settings import Settings
from kuberth.storage.database.users import NamespaceStore
from kuberth.storage.github import GitHubUser
from tests.integration.revocation import deployment, has_access
from tests.integration.slowing import DELAY, ticks_while
from tests.integration.watching import wait_deleted


@pytest.fixture
def loop() -> Iterator[asyncio.Runner]:
    """One event loop for the test's async service calls (a namespace's create, a revoke)."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def services(kuberth_settings: Callable[..., Settings], loop: asyncio.Runner) -> Iterator[Services]:
    built = build_services(kuberth_settings())
    built.provisioner.ensure_cluster_objects()
    yield built
    _close(built, loop)


def _close(services: Services, loop: asyncio.Runner) -> None:
    """Stop what the services started: the host claims step starts the Ingress index."""
    for informer in services.informers:
        informer.stop()
    services.kubernetes.close()
    services.database.engine.dispose()
    loop.run(_aclose(services))


async def _aclose(services: Services) -> None:
    """Close what the loop opened, in it."""
    await services.kubernetes.aclose()
    await services.database.adispose()


def test_a_removed_baseline_piece_comes_back_in_one_cheap_pass(
    services: Services, loop: asyncio.Runner, admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    _, namespace = services.users.sign_in(GitHubUser(new_id(), f"r{secrets.token_hex(3)}", None))
    networking = client.NetworkingV1Api(admin_api)
    networking.delete_namespaced_network_policy(BASELINE_NAME, namespace)

    api = services.kubernetes
    before = api.requests_sent
    report = loop.run(services.reconciler.areconcile())
    sent = api.requests_sent - before

    assert namespace in report.completed
    assert networking.read_namespaced_network_policy(BASELINE_NAME, namespace)
    assert not report.failed
    # Five lists (namespaces and the four baseline kinds, paginated by 500) plus the applies for
    # the namespaces that were incomplete; other tests' namespaces may be mid-deletion or
    # incomplete on this shared cluster, so the applies are counted from the report. The host
    # claims step adds the Ingress index's first list and its watch (once per process; it is
    # watch-fed from then on) and a narrowed list per orphan candidate (none here: this test's
    # process made no claim older than the grace).
    pages = -(-report.namespaces // 500)
    assert sent <= 5 * pages + 4 * len(report.completed) + 2


def test_a_namespace_the_database_lost_is_recorded_for_its_owner(
    services: Services, loop: asyncio.Runner, new_id: Callable[[], int]
) -> None:
    principal, personal = services.users.sign_in(
        GitHubUser(new_id(), f"r{secrets.token_hex(3)}", None)
    )
    extra = f"{personal}-lost"
    loop.run(services.namespaces.acreate(principal, extra))
    with services.database.session() as session:
        NamespaceStore(session).forget(extra)  # as if the request died before recording it

    report = loop.run(services.reconciler.areconcile())

    assert extra in report.recorded
    assert [ns.name for ns in services.namespaces.list(principal)[1]] == [personal, extra]


def test_a_namespace_deleted_behind_kuberths_back_is_forgotten(
    services: Services, loop: asyncio.Runner, admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    principal, personal = services.users.sign_in(
        GitHubUser(new_id(), f"r{secrets.token_hex(3)}", None)
    )
    extra = f"{personal}-gone"
    loop.run(services.namespaces.acreate(principal, extra))
    core = client.CoreV1Api(admin_api)
    core.delete_namespace(extra)
    core.delete_namespace(personal)
    wait_deleted(core.read_namespace, core.list_namespace, extra)  # deleted is not gone yet

    report = loop.run(services.reconciler.areconcile())

    assert extra in report.forgotten
    assert personal not in report.forgotten  # the owner's next sign-in makes it again
    with services.database.session() as session:
        assert NamespaceStore(session).get(extra) is None
        assert NamespaceStore(session).get(personal) is not None


def test_a_revoked_owner_stays_revoked_through_every_pass(
    kuberth_settings: Callable[..., Settings],
    loop: asyncio.Runner,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    """The pass completes a revoked owner's baseline but for the RoleBinding, and removes one
    that came back (an older replica's pass, say), stopping the apps first, as a revoke does;
    after a restore it keeps it again."""
    operator_id, tenant_id = new_id(), new_id()
    services = build_services(kuberth_settings(admin_github_ids=[operator_id]))
    try:
        services.provisioner.ensure_cluster_objects()
        _, namespace = services.users.sign_in(
            GitHubUser(tenant_id, f"r{secrets.token_hex(3)}", None)
        )
        operator, _ = services.users.sign_in(
            GitHubUser(operator_id, f"o{secrets.token_hex(3)}", None)
        )
        rbac, networking = (
            client.RbacAuthorizationV1Api(admin_api),
            client.NetworkingV1Api(admin_api),
        )

        loop.run(services.admin.arevoke(operator, tenant_id))
        assert not has_access(rbac, namespace)
        networking.delete_namespaced_network_policy(BASELINE_NAME, namespace)
        report = loop.run(services.reconciler.areconcile())
        assert namespace in report.completed  # the missing NetworkPolicy...
        assert networking.read_namespaced_network_policy(BASELINE_NAME, namespace)
        assert not has_access(rbac, namespace)  # ...but not the access

        services.provisioner.apply_baseline(namespace, github_id=tenant_id)  # as before the fix
        assert has_access(rbac, namespace)
        apps = client.AppsV1Api(admin_api)
        apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))
        report = loop.run(services.reconciler.areconcile())
        assert namespace in report.withheld
        assert not has_access(rbac, namespace)
        stopped = apps.read_namespaced_deployment("web", namespace)
        assert stopped.spec.replicas == 0
        assert stopped.metadata.annotations[REPLICAS_BEFORE_REVOKE] == "2"

        loop.run(services.admin.arestore(operator, tenant_id))
        assert has_access(rbac, namespace)
        assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 2
        report = loop.run(services.reconciler.areconcile())
        assert namespace not in report.withheld
        assert has_access(rbac, namespace)
    finally:
        _close(services, loop)


@pytest.mark.anyio
async def test_a_pass_leaves_the_event_loop_free_while_kubernetes_answers(
    slow_services: Services, admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    """Five lists, then an apply per missing piece, each answered DELAY late: the loop's other
    work runs meanwhile."""
    _, namespace = await slow_services.users.asign_in(
        GitHubUser(new_id(), f"r{secrets.token_hex(3)}", None)
    )
    client.NetworkingV1Api(admin_api).delete_namespaced_network_policy(BASELINE_NAME, namespace)
    started = time.monotonic()

    report, ticks = await ticks_while(slow_services.reconciler.areconcile())

    took = time.monotonic() - started
    assert namespace in report.completed
    assert took >= 9 * DELAY  # five lists and four applies at least
    assert ticks >= 30, (ticks, took)  # ~took / 0.01 on an idle machine; none had it held the loop


@pytest.mark.anyio
async def test_a_cancelled_run_stops_its_pass_at_the_next_namespace(
    slow_services: Services, new_id: Callable[[], int]
) -> None:
    """Cancelled while the pass lists (leadership lost), ``run`` sets ``stop``, waits for the
    pass to stop before its first namespace, and ends cancelled; the pass counts as stopped."""
    await slow_services.users.asign_in(GitHubUser(new_id(), f"r{secrets.token_hex(3)}", None))
    before = _stopped_passes()
    stop = threading.Event()
    running = asyncio.create_task(slow_services.reconciler.run(stop, interval=3600))
    await asyncio.sleep(2 * DELAY)  # in the first of the five lists

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert stop.is_set()
    assert _stopped_passes() == before + 1


def _stopped_passes() -> float:
    return REGISTRY.get_sample_value("kuberth_reconcile_passes_total", {"result": "stopped"}) or 0.0
