"""The Ingress host webhook against the real API server, with kubectl-style writes.

Each tenant writes with the Kubernetes client built from its downloaded kubeconfig (what kubectl
does), so the requests reach Kubernetes directly and only the webhook stands between them and
another tenant's host.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from sqlalchemy import create_engine, insert, select, update

from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer
from kuberth.http.services import Services, build_services
from kuberth.services.builders.admission import HOST_WEBHOOK
from kuberth.services.reconciler import ReconcileReport
from kuberth.settings import Settings
from kuberth.storage.database.models import IngressHost
from tests.integration.conftest import Tenant
from tests.integration.objects import native_ingress
from tests.integration.signin import sign_in
from tests.timing import scaled

APPS = "apps.localhost"
PATHS = [{"path": "/", "service": "web", "port": 80}]


class Webhooked:
    """A Kuberth serving the webhook, its tenants and their kubectl."""

    def __init__(
        self,
        start: Callable[[], AbstractContextManager[str]],
        github: StandInServer,
        new_id: Callable[[], int],
        tmp_path: Path,
        database_url: str,
    ) -> None:
        self._start, self._github, self._new_id, self._tmp = start, github, new_id, tmp_path
        self.database_url = database_url
        self._server = contextlib.ExitStack()
        self._clients = contextlib.ExitStack()
        self.url = ""

    def __enter__(self) -> Webhooked:
        self.url = self._server.enter_context(self._start())
        return self

    def stop_kuberth(self) -> None:
        self._server.close()

    def restart_kuberth(self) -> None:
        """A new process, as another replica would be: a serving certificate of its own (on
        another port; the webhook's port and URL stay)."""
        self._server.close()
        self.url = self._server.enter_context(self._start())

    def __exit__(self, *exc: object) -> None:
        self._clients.close()
        self._server.close()

    def tenant(self) -> Tenant:
        http = httpx.Client(base_url=self.url, timeout=scaled(120))
        self._clients.callback(http.close)
        login, github_id = f"w{secrets.token_hex(4)}", self._new_id()
        assert sign_in(http, self._github, login=login, user_id=github_id).status_code == 302
        return Tenant(http, login, github_id)

    def kubectl(self, tenant: Tenant, namespace: str | None = None) -> client.NetworkingV1Api:
        """The tenant's kubectl for one of its namespaces (its personal one by default)."""
        namespace = namespace or tenant.namespace
        downloaded = tenant.http.get(f"/api/v1/namespaces/{namespace}/kubeconfig")
        assert downloaded.status_code == 200, downloaded.text
        path = self._tmp / f"{namespace}.kubeconfig"
        path.write_text(downloaded.text)
        api: client.ApiClient = config.new_client_from_config(str(path))
        self._clients.callback(api.close)
        return client.NetworkingV1Api(api)

    def claims(self) -> dict[str, tuple[str, str]]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(select(IngressHost)).all()
        finally:
            engine.dispose()
        return {row.host: (row.namespace, row.ingress) for row in rows}


@pytest.fixture
def webhooked(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
    namespace: str,
    admin_api: client.ApiClient,
    tmp_path: Path,
    sqlite_url: str,
) -> Iterator[Webhooked]:
    port = free_port()
    secret_key = secrets.token_urlsafe(32)  # shared by every start, as by replicas

    def start() -> AbstractContextManager[str]:
        return kuberth_server(
            secret_key=secret_key,
            admission_webhook_url=f"https://127.0.0.1:{port}",
            admission_listen_host="127.0.0.1",
            admission_listen_port=port,
            kuberth_namespace=namespace,
        )

    registrations = client.AdmissionregistrationV1Api(admin_api)
    try:
        with Webhooked(start, github, new_id, tmp_path, sqlite_url) as running:
            yield running
    finally:
        # Left behind, it would refuse every later tenant Ingress write in this session.
        with contextlib.suppress(ApiException):
            registrations.delete_validating_webhook_configuration(HOST_WEBHOOK)


def _refused(call: Callable[[], object]) -> ApiException:
    with pytest.raises(ApiException) as refused:
        call()
    return refused.value


def test_it_is_registered_for_tenant_namespaces_with_kuberths_ca(
    webhooked: Webhooked, admin_api: client.ApiClient
) -> None:
    registered = client.AdmissionregistrationV1Api(admin_api).read_validating_webhook_configuration(
        HOST_WEBHOOK
    )
    hooks = {hook.name: hook for hook in registered.webhooks}
    assert set(hooks) == {"hosts.kuberth.dev", "host-releases.kuberth.dev"}
    assert hooks["hosts.kuberth.dev"].failure_policy == "Fail"
    assert hooks["host-releases.kuberth.dev"].failure_policy == "Ignore"
    for hook in hooks.values():
        assert hook.namespace_selector.match_labels == {"app.kubernetes.io/managed-by": "kuberth"}
        assert hook.client_config.ca_bundle
        assert hook.side_effects == "NoneOnDryRun"


def test_another_replica_serves_under_the_registered_ca_without_registering_again(
    webhooked: Webhooked, admin_api: client.ApiClient
) -> None:
    registrations = client.AdmissionregistrationV1Api(admin_api)
    before = registrations.read_validating_webhook_configuration(HOST_WEBHOOK)
    alice = webhooked.tenant()
    kubectl = webhooked.kubectl(alice)
    webhooked.restart_kuberth()

    after = registrations.read_validating_webhook_configuration(HOST_WEBHOOK)
    assert after.metadata.resource_version == before.metadata.resource_version
    # The API server trusts the new process's certificate: the webhook answers, and refuses.
    host = f"a-{alice.namespace}.{APPS}"
    kubectl.create_namespaced_ingress(alice.namespace, native_ingress("one", host))
    refused = _refused(
        lambda: kubectl.create_namespaced_ingress(alice.namespace, native_ingress("two", host))
    )
    assert refused.status == 409, refused.body
    assert "already used by ingress one" in refused.body


def test_a_kubectl_user_cannot_take_a_host_another_tenants_longer_namespace_holds(
    webhooked: Webhooked,
) -> None:
    """The gap the admission policies leave: ``web-<bob>-<alice>`` fits Alice's pattern
    (``*-<alice>``) and Bob's namespace ``<bob>-<alice>``; the longer namespace holds it."""
    alice, bob = webhooked.tenant(), webhooked.tenant()
    longer = f"{bob.namespace}-{alice.namespace}"
    assert bob.http.post("/api/v1/namespaces", json={"name": longer}).status_code == 201
    host = f"web-{longer}.{APPS}"
    made = bob.http.post(
        f"/api/v1/namespaces/{longer}/ingresses", json={"name": "web", "host": host, "paths": PATHS}
    )
    assert made.status_code == 201, made.text

    refused = _refused(
        lambda: webhooked.kubectl(alice).create_namespaced_ingress(
            alice.namespace, native_ingress("steal", host)
        )
    )
    assert refused.status == 403, refused.body
    assert "hosts.kuberth.dev" in refused.body
    assert "outside your subdomain" in refused.body
    assert webhooked.claims()[host] == (longer, "web")


def test_two_kubectl_users_cannot_both_hold_a_host(webhooked: Webhooked) -> None:
    """Alice takes the host while it is hers; once Bob has the longer namespace, his kubectl
    cannot take it too (the claim, not the pattern, decides)."""
    alice, bob = webhooked.tenant(), webhooked.tenant()
    longer = f"{bob.namespace}-{alice.namespace}"
    host = f"web-{longer}.{APPS}"
    webhooked.kubectl(alice).create_namespaced_ingress(
        alice.namespace, native_ingress("first", host)
    )
    assert webhooked.claims()[host] == (alice.namespace, "first")
    assert bob.http.post("/api/v1/namespaces", json={"name": longer}).status_code == 201

    bobs = webhooked.kubectl(bob, longer)
    refused = _refused(
        lambda: bobs.create_namespaced_ingress(longer, native_ingress("second", host))
    )
    assert refused.status == 409, refused.body
    assert "already used by another tenant's ingress" in refused.body
    # An update that moves an Ingress of Bob's onto the host is refused the same way.
    bobs.create_namespaced_ingress(longer, native_ingress("other", f"other-{longer}.{APPS}"))
    moved = native_ingress("other", host)
    refused = _refused(lambda: bobs.patch_namespaced_ingress("other", longer, moved))
    assert refused.status == 409, refused.body
    assert webhooked.claims()[f"other-{longer}.{APPS}"] == (longer, "other")


def test_kubectl_claims_are_seen_by_the_api_and_released_by_a_delete(webhooked: Webhooked) -> None:
    alice = webhooked.tenant()
    ns = alice.namespace
    host = f"shop-{ns}.{APPS}"
    kubectl = webhooked.kubectl(alice)
    kubectl.create_namespaced_ingress(ns, native_ingress("by-kubectl", host))

    url = f"/api/v1/namespaces/{ns}/ingresses"
    taken = alice.http.post(url, json={"name": "web", "host": host, "paths": PATHS})
    assert taken.status_code == 409, taken.text
    assert "ingress by-kubectl" in taken.json()["message"]  # the claim's row names it

    kubectl.delete_namespaced_ingress("by-kubectl", ns)
    assert host not in webhooked.claims()
    freed = alice.http.post(url, json={"name": "web", "host": host, "paths": PATHS})
    assert freed.status_code == 201, freed.text
    assert webhooked.claims()[host] == (ns, "web")


def test_a_dry_run_holds_nothing(webhooked: Webhooked) -> None:
    alice = webhooked.tenant()
    ns = alice.namespace
    host = f"dry-{ns}.{APPS}"
    webhooked.kubectl(alice).create_namespaced_ingress(
        ns, native_ingress("dry", host), dry_run="All"
    )
    assert host not in webhooked.claims()
    made = alice.http.post(
        f"/api/v1/namespaces/{ns}/ingresses", json={"name": "web", "host": host, "paths": PATHS}
    )
    assert made.status_code == 201, made.text


def test_with_kuberth_down_tenants_cannot_write_ingresses_and_nobody_else_is_blocked(
    webhooked: Webhooked, admin_api: client.ApiClient, namespace: str
) -> None:
    alice = webhooked.tenant()
    kubectl = webhooked.kubectl(alice)
    kubectl.create_namespaced_ingress(
        alice.namespace, native_ingress("before", f"a-{alice.login}.{APPS}")
    )
    webhooked.stop_kuberth()

    refused = _refused(
        lambda: kubectl.create_namespaced_ingress(
            alice.namespace, native_ingress("after", f"b-{alice.login}.{APPS}")
        )
    )
    assert refused.status >= 500 or refused.status == 403, refused.body  # fails closed
    assert "hosts.kuberth.dev" in refused.body
    # Deletes only release claims: they go through (the reconciler tidies up later).
    kubectl.delete_namespaced_ingress("before", alice.namespace)
    # Outside tenant namespaces nothing waits on Kuberth.
    client.NetworkingV1Api(admin_api).create_namespaced_ingress(
        namespace, native_ingress("elsewhere", "elsewhere.example")
    )


def test_claims_of_ingresses_that_are_gone_are_released_by_the_reconciler(
    webhooked: Webhooked, kuberth_settings: Callable[..., Settings], namespace: str
) -> None:
    alice = webhooked.tenant()
    extra = f"{alice.namespace}-gone"
    assert alice.http.post("/api/v1/namespaces", json={"name": extra}).status_code == 201
    kept, gone, young = (
        f"kept-{alice.namespace}.{APPS}",
        f"web-{extra}.{APPS}",
        f"young-{alice.namespace}.{APPS}",
    )
    for ns, name, host in ((alice.namespace, "kept", kept), (extra, "web", gone)):
        made = alice.http.post(
            f"/api/v1/namespaces/{ns}/ingresses",
            json={"name": name, "host": host, "paths": PATHS},
        )
        assert made.status_code == 201, made.text
    # Deleting a namespace deletes its Ingresses without a word to Kuberth's table.
    deleted = alice.http.delete(f"/api/v1/namespaces/{extra}")
    assert deleted.status_code == 204, deleted.text
    assert gone in webhooked.claims()
    engine = create_engine(webhooked.database_url)
    with engine.begin() as connection:
        # Both made an hour ago; a third claim, just made, has no Ingress yet (a write in flight).
        connection.execute(
            update(IngressHost).values(
                created_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
            )
        )
        connection.execute(
            insert(IngressHost).values(
                host=young, namespace=alice.namespace, ingress="young", owner_id=alice.github_id
            )
        )
    engine.dispose()

    services = build_services(kuberth_settings(kuberth_namespace=namespace))
    try:
        report = asyncio.run(_reconcile_once(services))
    finally:
        for informer in services.informers:
            informer.stop()
        services.kubernetes.close()
        services.database.engine.dispose()
    assert report.released_hosts == 1, report
    claims = webhooked.claims()
    assert gone not in claims
    assert claims[kept] == (alice.namespace, "kept")
    assert claims[young] == (alice.namespace, "young")


async def _reconcile_once(services: Services) -> ReconcileReport:
    """One reconcile pass on a loop of its own, whose async pools it closes."""
    try:
        return await services.reconciler.areconcile()
    finally:
        await services.kubernetes.aclose()
        await services.database.adispose()
