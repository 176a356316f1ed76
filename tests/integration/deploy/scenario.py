"""One pass through everything Kuberth asks of Kubernetes, as a tenant and as an operator.

The least-privilege tests run it with Kuberth holding only the roles from deploy/, then with
each of their rules taken away in turn: every rule must be needed by some step, so each step
checks its own outcome and a failure names the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from kubernetes import client

from kuberth.devtools.github import StandInServer
from kuberth.http.services import Services
from kuberth.services.builders.tenant import BASELINE_NAME, OWNER_ID
from kuberth.services.leader import RECONCILER_LEASE
from kuberth.services.reconciler import Reconciler, ReconcileReport
from kuberth.storage.database.engine import Database
from kuberth.storage.kubernetes.api import JSON, METADATA_ONLY
from kuberth.storage.kubernetes.namespaces import NamespaceStorage
from kuberth.storage.kubernetes.resources import BASELINE_STORAGE, ResourceStorage
from tests.integration.signin import sign_in
from tests.timing import eventually, scaled

IMAGE = "registry.example/shop:1.0"


class ScenarioFailedError(AssertionError):
    """A step did not get the outcome it needs; ``step`` names it."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"step {step!r} failed: {detail}")
        self.step = step
        self.detail = detail


@dataclass
class Scenario:
    """What a run needs: Kuberth in process, the GitHub stand-in, fresh ids, an admin client."""

    app: Any  # the FastAPI app, served (its lifespan started) at ``url``
    url: str
    github: StandInServer
    new_id: Callable[[], int]
    operator_id: int  # in the app's KUBERTH_ADMIN_GITHUB_IDS
    lease_namespace: str  # Kuberth's own namespace (KUBERTH_KUBERTH_NAMESPACE)
    admin_api: client.ApiClient
    #: Each step run so far, with the seconds it took.
    steps: list[tuple[str, float]] = field(default_factory=list)

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run one step; any failure in it becomes a ScenarioFailedError naming it."""
        started = time.monotonic()
        try:
            yield
        except ScenarioFailedError:
            raise
        except Exception as error:
            raise ScenarioFailedError(name, f"{type(error).__name__}: {error}") from error
        finally:
            self.steps.append((name, time.monotonic() - started))


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, not {' or '.join(map(str, statuses))}: {response.text[:400]}"
        )
    return response


def until_readable(http: httpx.Client, namespace: str, tenant_id: int, timeout: float = 10) -> None:
    """Wait until the tenant may read its namespace.

    The API server authorizes from a watch-fed copy of the RBAC objects, so a RoleBinding Kuberth
    has just written can take a moment to count (seconds on a loaded machine). Only a refusal of
    the tenant's own user is waited out; one of Kuberth's (its impersonation) fails at once.
    """
    deadline = time.monotonic() + scaled(timeout)
    while (response := http.get(f"/api/v1/namespaces/{namespace}")).status_code != 200:
        lagging = response.status_code == 403 and f'User "kuberth:{tenant_id}"' in str(
            response.json().get("message")
        )
        if not lagging or time.monotonic() > deadline:
            expect(response, 200)
        time.sleep(0.1)


class _OwnNamespaces(NamespaceStorage):
    """Lists only the namespaces of the given owners: the reconcile pass must not touch other
    tests' namespaces on a shared cluster (RBAC sees the same list request either way)."""

    def __init__(self, inner: NamespaceStorage, owners: list[int]) -> None:
        super().__init__(inner._api)
        self._owners = ",".join(map(str, owners))

    def alist_all(
        self, *, label_selector: str, page_size: int = 500, metadata_only: bool = False
    ) -> AsyncIterator[JSON]:
        return super().alist_all(
            label_selector=f"{label_selector},{OWNER_ID} in ({self._owners})",
            page_size=page_size,
            metadata_only=metadata_only,
        )


class _InNamespace(ResourceStorage):
    """One kind's cluster-wide list, narrowed by a field selector to one namespace: the same
    request as far as RBAC goes, without reading every tenant of a busy shared cluster."""

    def __init__(self, inner: ResourceStorage, namespace: str) -> None:
        super().__init__(inner._api)
        self.kind = inner.kind
        self._namespace = namespace

    async def alist_all(
        self, *, label_selector: str, page_size: int = 500, metadata_only: bool = False
    ) -> AsyncIterator[JSON]:
        query = {
            "labelSelector": label_selector,
            "fieldSelector": f"metadata.namespace={self._namespace}",
        }
        page = await self._api.arequest(
            "GET", self.kind.path(), query=query, accept=METADATA_ONLY if metadata_only else None
        )
        for item in page.get("items") or []:
            yield item


def run(scenario: Scenario) -> None:
    """Every permission Kuberth's ClusterRole grants, each used by a step that checks it."""
    with contextlib.ExitStack() as browsers:
        tenant, operator, again = (
            browsers.enter_context(httpx.Client(base_url=scenario.url, timeout=scaled(30)))
            for _ in range(3)
        )
        _run(scenario, tenant, operator, again)


def _run(s: Scenario, tenant: httpx.Client, operator: httpx.Client, again: httpx.Client) -> None:
    services = s.services
    tenant_id, operator_id = s.new_id(), s.operator_id
    login = f"lp{secrets.token_hex(4)}"
    ns = login
    extra, doomed = f"{ns}-extra", f"{ns}-doomed"

    with s.step("start-up: apply the tenant ClusterRole and the admission policies"):
        services.provisioner.ensure_cluster_objects()
    with s.step("readiness"):
        expect(tenant.get("/readyz"), 200)
    with s.step("leader election: take the Lease, renew it, hand it back"):
        with contextlib.suppress(client.ApiException):  # the last run's, gone with its holder
            client.CoordinationV1Api(s.admin_api).delete_namespaced_lease(
                RECONCILER_LEASE, s.lease_namespace
            )
        assert services.leader.try_acquire_or_renew(), "the Lease was not created"
        assert services.leader.try_acquire_or_renew(), "the Lease was not renewed"
        services.leader.release()
        lease = client.CoordinationV1Api(s.admin_api).read_namespaced_lease(
            RECONCILER_LEASE, s.lease_namespace
        )
        assert not lease.spec.holder_identity, "the Lease was not handed back"

    with s.step("sign-up: personal namespace and its baseline"):
        expect(sign_in(tenant, s.github, login=login, user_id=tenant_id), 302)
        until_readable(tenant, ns, tenant_id)
    with s.step("operator sign-up"):
        operator_login = f"op{secrets.token_hex(4)}"
        expect(sign_in(operator, s.github, login=operator_login, user_id=operator_id), 302)
    with s.step("sign-in again: the recorded namespace is read and its labels re-applied"):
        expect(sign_in(again, s.github, login=login, user_id=tenant_id), 302)

    with s.step("namespace: create extra ones"):
        for name in (extra, doomed):
            created = tenant.post("/api/v1/namespaces", json={"name": name})
            # 403: created, but its read as the tenant came before the RoleBinding counted.
            lagging = f'User "kuberth:{tenant_id}"' in str(created.json().get("message"))
            if not (created.status_code == 403 and lagging):
                expect(created, 201)
            until_readable(tenant, name, tenant_id)
    with s.step("namespace: read it with its quota, as the tenant"):
        got = expect(tenant.get(f"/api/v1/namespaces/{extra}"), 200).json()
        assert got["phase"] == "Active", got
        assert got["quota"], got

    with s.step("dashboard: the informers' first lists"):
        expect(tenant.get("/dashboard"), 200)

    apps = f"/api/v1/namespaces/{ns}/apps"
    with s.step("app: create (Deployment, Service, Ingress; host uniqueness across namespaces)"):
        expect(tenant.post(apps, json={"name": "shop", "image": IMAGE, "port": 8080}), 201)
    with s.step("app: read and list"):
        expect(tenant.get(f"{apps}/shop"), 200)
        assert [a["name"] for a in expect(tenant.get(apps), 200).json()["items"]] == ["shop"]
    with s.step("app: update"):
        expect(tenant.patch(f"{apps}/shop", json={"image": IMAGE + "1", "replicas": 2}), 200)
    with s.step("dashboard: the app arrives through the watch"):
        eventually(
            lambda: "shop" in expect(tenant.get("/dashboard"), 200).text,
            within=10,
            what="the app on the dashboard",
            interval=0.1,
        )
    with s.step("app: delete"):
        expect(tenant.delete(f"{apps}/shop"), 204)

    base = f"/api/v1/namespaces/{ns}"
    with s.step("deployment: create, read with pods and events, list"):
        expect(tenant.post(f"{base}/deployments", json={"name": "web", "image": IMAGE}), 201)
        expect(tenant.get(f"{base}/deployments/web"), 200)
        related = {"include": ["pods", "events"]}
        expect(tenant.get(f"{base}/deployments/web", params=related), 200)
        expect(tenant.get(f"{base}/deployments"), 200)
    with s.step("deployment: merge patch, replace"):
        expect(
            tenant.patch(
                f"{base}/deployments/web",
                content=b'{"metadata": {"labels": {"tier": "web"}}}',
                headers={"content-type": "application/merge-patch+json"},
            ),
            200,
        )
        expect(
            tenant.put(f"{base}/deployments/web", json={"name": "web", "image": IMAGE + "2"}), 200
        )
    with s.step("deployment: scale"):
        expect(tenant.post(f"{base}/deployments/web/scale", json={"replicas": 2}), 200)
    with s.step("deployment: restart and watch the rollout"):
        # Paused, the restart cannot roll out, so the wait always watches (and ends at its
        # timeout): unpaused, the fake node could finish the rollout before the wait began.
        pause = b'{"spec": {"paused": true}}'
        merge = {"content-type": "application/merge-patch+json"}
        expect(tenant.patch(f"{base}/deployments/web", content=pause, headers=merge), 200)
        expect(tenant.post(f"{base}/deployments/web/restart"), 200)
        rollout = tenant.get(f"{base}/deployments/web/rollout", params={"timeout": 1})
        assert expect(rollout, 200).json()["outcome"] == "timeout", rollout.text
        resume = b'{"spec": {"paused": false}}'
        expect(tenant.patch(f"{base}/deployments/web", content=resume, headers=merge), 200)
    with s.step("service: create, read with endpoints, list, patch, replace"):
        spec = {"name": "web", "app": "web", "ports": [{"port": 80, "target_port": 8080}]}
        expect(tenant.post(f"{base}/services", json=spec), 201)
        expect(tenant.get(f"{base}/services/web"), 200)
        expect(tenant.get(f"{base}/services/web", params={"include": "endpoints"}), 200)
        expect(tenant.get(f"{base}/services"), 200)
        expect(
            tenant.patch(
                f"{base}/services/web",
                content=b'{"metadata": {"labels": {"tier": "web"}}}',
                headers={"content-type": "application/merge-patch+json"},
            ),
            200,
        )
        expect(tenant.put(f"{base}/services/web", json={**spec, "ports": [{"port": 81}]}), 200)
    with s.step("ingress: create, read, list, patch, replace"):
        host = f"web-{ns}.apps.localhost"
        spec = {"name": "web", "host": host, "paths": [{"service": "web", "port": 80}]}
        expect(tenant.post(f"{base}/ingresses", json=spec), 201)
        expect(tenant.get(f"{base}/ingresses/web"), 200)
        expect(tenant.get(f"{base}/ingresses"), 200)
        expect(
            tenant.patch(
                f"{base}/ingresses/web",
                content=b'{"metadata": {"labels": {"tier": "web"}}}',
                headers={"content-type": "application/merge-patch+json"},
            ),
            200,
        )
        expect(tenant.put(f"{base}/ingresses/web", json={**spec, "host": "x" + host}), 200)
    with s.step("ingress hosts: the admission webhook refuses a held host to any writer"):
        by_hand = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "by-hand"},
            "spec": {
                "ingressClassName": "nginx",
                "rules": [{"host": "x" + host}],
            },
        }
        refused: client.ApiException | None = None
        try:
            client.NetworkingV1Api(s.admin_api).create_namespaced_ingress(ns, by_hand)
        except client.ApiException as error:
            refused = error
        assert refused is not None, "the webhook let a held host be taken"
        assert refused.status == 409, refused.body
        assert "hosts.kuberth.dev" in refused.body, refused.body
    with s.step("namespace page: events"):
        expect(tenant.get(f"/namespaces/{ns}"), 200)
    with s.step("deployment, service, ingress: delete"):
        for plural in ("ingresses", "services", "deployments"):
            expect(tenant.delete(f"{base}/{plural}/web"), 204)

    with s.step("kubeconfig: download (service account, RoleBinding, TokenRequest)"):
        assert "token:" in expect(tenant.get(f"{base}/kubeconfig"), 200).text
    with s.step("kubeconfig: revoke"):
        expect(tenant.delete(f"{base}/kubeconfig"), 204)

    with s.step("operator: tenant list with quota usage (informer)"):
        listed = expect(operator.get("/api/v1/admin/tenants", params={"limit": 500}), 200).json()
        assert any(t["github_id"] == tenant_id for t in listed["items"]), listed
    with s.step("operator: read a tenant's namespace as Kuberth"):
        expect(operator.get(f"/api/v1/namespaces/{extra}"), 200)
    with s.step("operator: revoke a user (their apps scaled to zero as the tenant)"):
        expect(tenant.post(f"{base}/deployments", json={"name": "paused", "image": IMAGE}), 201)
        expect(operator.post(f"/api/v1/admin/users/{tenant_id}/revoke"), 204)
        paused = client.AppsV1Api(s.admin_api).read_namespaced_deployment("paused", ns)
        assert paused.spec.replicas == 0, paused.spec
    with s.step("operator: restore a user"):
        expect(operator.post(f"/api/v1/admin/users/{tenant_id}/restore"), 204)
        # The revoke ended the tenant's sessions; a restore gives access back, not sessions.
        expect(tenant.get("/api/v1/me"), 401)
        expect(sign_in(tenant, s.github, login=login, user_id=tenant_id), 302)
        until_readable(tenant, doomed, tenant_id)
        assert (
            expect(tenant.get(f"{base}/deployments/paused"), 200).json()["replicas"]["desired"] == 1
        )
        expect(tenant.delete(f"{base}/deployments/paused"), 204)

    with s.step("namespace: delete as the tenant"):
        expect(tenant.delete(f"/api/v1/namespaces/{doomed}", params={"wait": "false"}), 202)
    with s.step("namespace: delete as an operator and watch it go"):
        expect(operator.delete(f"/api/v1/namespaces/{extra}", params={"timeout": 1}), 202, 204)

    with s.step("reconcile: complete a baseline that lost a piece"):
        client.CoreV1Api(s.admin_api).delete_namespaced_limit_range(BASELINE_NAME, ns)
        # A pool of its own for this thread's event loop (the app's belongs to the server's).
        database = Database(services.database.engine)
        reconciler = Reconciler(
            asessions=database.asession,
            namespaces=_OwnNamespaces(services.provisioner._namespaces, [tenant_id]),
            baseline_storage={
                kind: _InNamespace(storage(services.kubernetes), ns)
                for kind, storage in BASELINE_STORAGE.items()
            },
            provisioner=services.provisioner,
        )
        report = asyncio.run(_reconcile_once(reconciler, services, database))
        assert report.completed == [ns], report
        assert not report.failed, report

    with s.step("informers: kept current by watches, never listed again"):
        for informer in services.informers:
            assert informer.synced, informer
            assert informer.lists == 1, f"{informer._kind.plural} listed {informer.lists} times"


async def _reconcile_once(
    reconciler: Reconciler, services: Services, database: Database
) -> ReconcileReport:
    """One pass on this thread's loop; the async pools it opened are closed on it."""
    try:
        return await reconciler.areconcile()
    finally:
        await services.kubernetes.aclose()
        await database.async_engine.dispose()
