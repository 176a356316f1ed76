"""The admission webhook's listener: a second server on the app's own event loop, answering over
TLS with the same claims as the API's writes, and stopped with the app or by SIGTERM."""

from __future__ import annotations

import asyncio
import datetime
import secrets
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kuberth.certificates import SERVER_AUTH, issue, new_ca
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer
from kuberth.http.admission import AdmissionServer
from kuberth.services.admission import IngressAdmission, WebhookTls
from kuberth.services.builders.admission import HOST_REVIEW_PATH, HOST_WEBHOOK
from kuberth.services.host_claims import IngressClaims
from kuberth.services.hosts import HostClaims, Hosts, hosts_of, ingress_hosts
from kuberth.services.policy import WorkloadPolicy
from kuberth.storage.database.engine import Database
from kuberth.storage.database.users import NamespaceStore, UserStore
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.informer import Informer
from kuberth.storage.kubernetes.resources import IngressStorage
from tests.integration.objects import complete_rollout, native_ingress
from tests.integration.processes import KuberthProcess, rollout_wait_in_flight, serve_environment
from tests.integration.signin import sign_in
from tests.timing import eventually, scaled

APPS = "apps.localhost"


def tls_for(host: str) -> WebhookTls:
    validity = datetime.timedelta(days=1)
    ca = new_ca("test-admission-ca", validity=validity)
    return WebhookTls(ca, issue(ca, host, usage=SERVER_AUTH, validity=validity, hosts=[host]))


def review(namespace: str, obj: JSON) -> JSON:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": secrets.token_hex(8),
            "namespace": namespace,
            "operation": "CREATE",
            "name": obj["metadata"]["name"],
            "object": obj,
        },
    }


@pytest.mark.anyio
async def test_it_answers_as_a_task_of_the_apps_loop(
    database: Database, api: KubernetesApi, tmp_path: Path
) -> None:
    tenant = f"t{secrets.token_hex(4)}"
    with database.session() as session:
        UserStore(session).upsert(github_id=7, login=tenant, name=None)
        NamespaceStore(session).record(name=tenant, owner_id=7, personal=True)
    index = Informer[Hosts](
        api, IngressStorage.kind, label_selector="", project=ingress_hosts, index=hosts_of
    )
    index.attach(asyncio.get_running_loop())  # as the app's start-up does
    policy = WorkloadPolicy(
        apps_domain=APPS,
        custom_domains={},
        ingress_classes=("nginx",),
        service_types=("ClusterIP",),
    )
    hosts = HostClaims(
        asessions=database.asession, ingresses=IngressStorage(api), index=index, index_wait=10
    )
    admission = IngressAdmission(
        areads=database.aread,
        claims=IngressClaims(hosts=hosts, policy=policy, asessions=database.asession),
    )
    tls = tls_for("127.0.0.1")
    (tmp_path / "ca.crt").write_bytes(tls.ca.cert_pem)
    port = free_port()
    server = AdmissionServer(admission, tls, host="127.0.0.1", port=port)
    server.start()
    try:
        assert "kuberth-admission" in {task.get_name() for task in asyncio.all_tasks()}
        async with httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{port}",
            verify=ssl.create_default_context(cafile=tmp_path / "ca.crt"),
            timeout=30,
        ) as webhook:
            # Not a namespace Kuberth hands out: allowed without a question.
            stray = review("default", native_ingress("web", f"web.{APPS}"))
            answer = (await webhook.post(HOST_REVIEW_PATH, json=stray)).json()
            assert answer["response"] == {"uid": stray["request"]["uid"], "allowed": True}
            # A tenant's: its own subdomain's host is claimed, another's refused with the rule.
            own = review(tenant, native_ingress("web", f"web-{tenant}.{APPS}"))
            answer = (await webhook.post(HOST_REVIEW_PATH, json=own)).json()
            assert answer["response"]["allowed"] is True
            foreign = review(tenant, native_ingress("api", f"api-someone.{APPS}"))
            answer = (await webhook.post(HOST_REVIEW_PATH, json=foreign)).json()
            assert answer["response"]["allowed"] is False
            assert answer["response"]["status"]["code"] == 403
            assert "subdomain" in answer["response"]["status"]["message"]
    finally:
        await server.stop()
        await index.aclose()
    assert "kuberth-admission" not in {task.get_name() for task in asyncio.all_tasks()}
    with (  # stopped: nothing listens any more
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=2),
    ):
        pass


def test_on_sigterm_the_webhook_serves_until_the_requests_in_flight_are_done(
    kubeconfig: Path,
    github: StandInServer,
    sqlite_url: str,
    namespace: str,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
    tmp_path: Path,
) -> None:
    """The process's signals are the main server's: a request in flight while it drains may still
    write an Ingress, which needs the webhook (it fails closed), so the webhook stops with the
    app, after the drain, and the process exits 0."""
    port, webhook_port = free_port(), free_port()
    process = KuberthProcess(
        serve_environment(
            port=port,
            kubeconfig=kubeconfig,
            github=github,
            database_url=sqlite_url,
            secret_key=secrets.token_urlsafe(32),
            admission_webhook_url=f"https://127.0.0.1:{webhook_port}",
            admission_listen_host="127.0.0.1",
            admission_listen_port=str(webhook_port),
            kuberth_namespace=namespace,
            reconcile_interval="0",
        ),
        tmp_path / "server.log",
    )

    def webhook_allows() -> bool:
        stray = review("default", native_ingress("web", f"web.{APPS}"))
        answer = httpx.post(
            f"https://127.0.0.1:{webhook_port}{HOST_REVIEW_PATH}",
            json=stray,
            verify=False,  # noqa: S501 - the listener is under test, not its certificate
            timeout=scaled(30),
        )
        return bool(answer.json()["response"]["allowed"])

    def main_server_refuses() -> bool:
        try:
            httpx.get(f"{process.url}/healthz", timeout=scaled(5))
        except httpx.ConnectError:
            return True
        except httpx.TransportError:  # accepted as the listener closed, then dropped: ask again
            return False
        return False

    apps = client.AppsV1Api(admin_api)
    try:
        process.start()
        assert webhook_allows()
        login = f"w{secrets.token_hex(4)}"
        with httpx.Client(base_url=process.url, timeout=scaled(120)) as browser:
            assert sign_in(browser, github, login=login, user_id=new_id()).status_code == 302
            with rollout_wait_in_flight(process.url, browser, apps, login) as waiting:
                process.terminate()
                eventually(main_server_refuses, within=30, what="the server draining")
                assert not waiting.done()
                assert webhook_allows()  # still serving while the request is in flight
                complete_rollout(apps, login)
                assert waiting.result(timeout=scaled(60)).status_code == 200
        assert process.process is not None
        assert process.process.wait(timeout=scaled(30)) == 0, process.log_tail()
        with (  # stopped with the app
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", webhook_port), timeout=2),
        ):
            pass
    finally:
        process.stop()
        # Left behind, it would refuse every later tenant Ingress write in this session.
        try:
            client.AdmissionregistrationV1Api(admin_api).delete_validating_webhook_configuration(
                HOST_WEBHOOK
            )
        except ApiException as error:
            if error.status != 404:
                raise
