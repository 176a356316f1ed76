"""An operator's revoke and restore on the event loop, against the real API server, on SQLite and
PostgreSQL: access, sessions and apps taken away and given back, each audited."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest
from kubernetes import client

from kuberth.exceptions import ForbiddenError, NotFoundError, UnauthenticatedError
from kuberth.http.services import Services
from kuberth.services.principal import Principal
from kuberth.services.suspension import REPLICAS_BEFORE_REVOKE
from kuberth.storage.github import GitHubUser
from tests.integration.revocation import deployment, has_access
from tests.integration.slowing import DELAY, ticks_while

pytestmark = pytest.mark.anyio


async def test_a_revoke_takes_access_sessions_and_apps_and_a_restore_gives_them_back(
    build: Callable[..., Services], admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    operator_id, tenant_id = new_id(), new_id()
    services = build(admin_github_ids=[operator_id])
    tenant, namespace = await services.users.asign_in(
        GitHubUser(tenant_id, f"r{secrets.token_hex(3)}", None)
    )
    operator, _ = await services.users.asign_in(
        GitHubUser(operator_id, f"o{secrets.token_hex(3)}", None)
    )
    browser = await services.users.astart_session(tenant, user_agent=None)
    apps, rbac = client.AppsV1Api(admin_api), client.RbacAuthorizationV1Api(admin_api)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))

    await services.admin.arevoke(operator, tenant_id)

    assert not has_access(rbac, namespace)
    stopped = apps.read_namespaced_deployment("web", namespace)
    assert stopped.spec.replicas == 0
    assert stopped.metadata.annotations[REPLICAS_BEFORE_REVOKE] == "2"
    with pytest.raises(UnauthenticatedError):  # every signed-in browser ended
        await services.users.afrom_session(tenant_id, browser)
    with pytest.raises(ForbiddenError, match="revoked by an operator"):
        await services.users.asign_in(GitHubUser(tenant_id, tenant.login, None))

    await services.admin.arestore(operator, tenant_id)

    assert has_access(rbac, namespace)
    resumed = apps.read_namespaced_deployment("web", namespace)
    assert resumed.spec.replicas == 2
    assert REPLICAS_BEFORE_REVOKE not in (resumed.metadata.annotations or {})
    logged = await services.audit.list(operator, limit=20)
    assert [(e.action, e.result) for e in logged if e.kind == "User"] == [
        ("restore", "ok"),
        ("revoke", "ok"),
    ]
    with pytest.raises(NotFoundError):
        await services.admin.arevoke(operator, new_id())
    with pytest.raises(ForbiddenError, match="only operators"):
        await services.admin.arestore(tenant, operator_id)


async def test_a_revoke_and_a_restore_leave_the_event_loop_free_while_kubernetes_answers(
    slow_services: Services, new_id: Callable[[], int]
) -> None:
    """Four deletes and a list, then four applies and a list, each answered DELAY late."""
    tenant, _ = await slow_services.users.asign_in(
        GitHubUser(new_id(), f"r{secrets.token_hex(3)}", None)
    )
    operator = Principal(new_id(), "operator", None, is_admin=True)

    for change in (slow_services.admin.arevoke, slow_services.admin.arestore):
        started = time.monotonic()
        _, ticks = await ticks_while(change(operator, tenant.github_id))
        took = time.monotonic() - started
        assert took >= 4 * DELAY, change
        assert ticks >= 15, (change, ticks, took)  # ~80 on an idle machine; none if held
