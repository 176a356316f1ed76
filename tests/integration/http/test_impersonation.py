"""Tenants' requests reach Kubernetes as kuberth:<id>, and RBAC itself draws the boundary."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator

import pytest

from kuberth.exceptions import ForbiddenError
from kuberth.http.services import Services, build_services
from kuberth.services.namespaces import DeleteOutcome
from kuberth.services.principal import Principal
from kuberth.services.specs import AppSpec, AppUpdate
from kuberth.settings import Settings
from kuberth.storage.github import GitHubUser
from tests.timing import scaled


@pytest.fixture
def services(kuberth_settings: Callable[..., Settings]) -> Iterator[Services]:
    built = build_services(kuberth_settings())
    built.provisioner.ensure_cluster_objects()
    yield built
    for informer in built.informers:
        informer.stop()
    built.kubernetes.close()
    built.database.engine.dispose()


def test_kubernetes_sees_the_impersonated_tenant(
    services: Services, new_id: Callable[[], int]
) -> None:
    user = GitHubUser(id=new_id(), login=f"t{secrets.token_hex(3)}", name=None)
    principal, namespace = services.users.sign_in(user)
    identity = principal.kubernetes_identity
    review = services.kubernetes.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        identity=identity,
    )
    info = review["status"]["userInfo"]
    assert info["username"] == f"kuberth:{user.id}"
    assert "kuberth:tenants" in info["groups"]

    # Only RBAC can refuse these: Kuberth's own identity may do all of them.
    for path in (
        "/api/v1/namespaces/kube-system/secrets",
        f"/api/v1/namespaces/{namespace}/resourcequotas/kuberth-tenant/status",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "/api/v1/nodes",
    ):
        services.kubernetes.request("GET", path)
        with pytest.raises(ForbiddenError):
            services.kubernetes.request("GET", path, identity=identity)
    # Writes the tenant role leaves out: RBAC objects and the namespace's own labels.
    with pytest.raises(ForbiddenError):
        services.kubernetes.request(
            "POST",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
            body={"metadata": {"name": "x"}, "rules": []},
            identity=identity,
        )
    with pytest.raises(ForbiddenError):
        services.kubernetes.request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}",
            body={"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
            content_type="application/merge-patch+json",
            identity=identity,
        )
    # And inside its namespace it can work.
    created = services.kubernetes.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        body={"metadata": {"name": "mine"}, "data": {"k": "v"}},
        identity=identity,
    )
    assert created["metadata"]["namespace"] == namespace


def test_a_tenant_cannot_reach_another_tenants_namespace_even_past_kuberth(
    services: Services,
    new_id: Callable[[], int],
) -> None:
    """Were Kuberth's own ownership check missing, Kubernetes would still refuse."""
    alice, _ = services.users.sign_in(GitHubUser(new_id(), f"a{secrets.token_hex(3)}", None))
    _, bobs = services.users.sign_in(GitHubUser(new_id(), f"b{secrets.token_hex(3)}", None))
    for method, path in (
        ("GET", f"/api/v1/namespaces/{bobs}"),
        ("GET", f"/api/v1/namespaces/{bobs}/configmaps"),
        ("DELETE", f"/api/v1/namespaces/{bobs}"),
    ):
        with pytest.raises(ForbiddenError):
            services.kubernetes.request(method, path, identity=alice.kubernetes_identity)


def test_requests_per_sign_up_and_per_namespace_delete(
    services: Services,
    new_id: Callable[[], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """How many API-server requests one sign-up and one namespace deletion make."""
    api = services.kubernetes
    user = GitHubUser(id=new_id(), login=f"t{secrets.token_hex(3)}", name=None)
    before = api.requests_sent
    principal, namespace = services.users.sign_in(user)
    first = api.requests_sent - before
    before = api.requests_sent
    services.users.sign_in(user)
    again = api.requests_sent - before
    extra = f"{namespace}-x"
    asyncio.run(_create(services, principal, extra))
    before = api.requests_sent
    outcome = asyncio.run(_delete(services, principal, extra))
    deletion = api.requests_sent - before
    assert outcome.gone
    with capsys.disabled():
        print(f"\nAPI-server requests: sign-up {first}, sign-in again {again}, delete {deletion}")
    # Budgets, not today's exact figures: fewer is fine, more is a regression. Each also sent
    # something, so a counter that stopped counting cannot pass.
    assert 1 <= first <= 5  # create namespace + 4 server-side applies
    assert 1 <= again <= 6  # read (ownership) + apply namespace + 4 applies
    assert 1 <= deletion <= 3  # the README's target per namespace deletion (today: DELETE + watch)


def test_requests_per_app_change(
    services: Services, new_id: Callable[[], int], capsys: pytest.CaptureFixture[str]
) -> None:
    """An app is three objects; Kuberth makes no read it can do without."""
    principal, namespace = services.users.sign_in(
        GitHubUser(id=new_id(), login=f"t{secrets.token_hex(3)}", name=None)
    )
    # Who holds a host is the Ingress index's answer: its first list and watch (as every
    # watch-fed copy's) are once per process, not per app, so they are made before counting.
    for informer in services.informers:
        informer.require_synced(scaled(30))
    counts = asyncio.run(_app_changes(services, principal, namespace))
    with capsys.disabled():
        print(f"\nAPI-server requests per app: {counts}")
    # Budgets (fewer is fine); at least one request per object written, so a counter that
    # stopped counting cannot pass.
    assert counts["create"] == 3  # 3 creates; the free host costs no call (the index says so)
    assert 1 <= counts["update"] <= 4  # 3 reads + the 1 changed part
    assert 3 <= counts["delete"] <= 4  # read (is it an app?) + 3 deletes


async def _create(services: Services, principal: Principal, namespace: str) -> None:
    """Create a namespace on an event loop of its own (the service is async)."""
    try:
        await services.namespaces.acreate(principal, namespace)
    finally:  # what this loop opened is closed in it
        await services.kubernetes.aclose()
        await services.database.adispose()


async def _delete(services: Services, principal: Principal, namespace: str) -> DeleteOutcome:
    """Delete a namespace and wait until it is gone, on one event loop (the service is async)."""
    try:
        return await services.namespaces.delete(principal, namespace, wait=True, timeout=60)
    finally:  # what this loop opened is closed in it
        await services.kubernetes.aclose()
        await services.database.adispose()


async def _app_changes(services: Services, principal: Principal, namespace: str) -> dict[str, int]:
    """Create, update and delete an app on one event loop (the services' async verbs), counting
    the API-server requests of each."""
    api = services.kubernetes
    counts = {}
    try:
        before = api.requests_sent
        await services.apps.create(principal, namespace, AppSpec(name="shop", image="nginx:1.27"))
        counts["create"] = api.requests_sent - before
        # Let the controllers finish with the new Deployment, so no status write races the
        # update (a race costs a re-read and a second write, which the update survives but this
        # count not).
        await services.workloads.wait_for_rollout(principal, namespace, "shop", timeout=60)
        before = api.requests_sent
        change = AppUpdate(image="nginx:1.28", replicas=2)
        await services.apps.update(principal, namespace, "shop", change)
        counts["update"] = api.requests_sent - before
        # The budget is for a change that landed (read outside the counted windows).
        stored = api.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/shop")
        assert stored["spec"]["replicas"] == 2
        assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
        before = api.requests_sent
        await services.apps.delete(principal, namespace, "shop")
        counts["delete"] = api.requests_sent - before
    finally:  # what this loop opened is closed in it
        await api.aclose()
        await services.database.adispose()
    return counts
