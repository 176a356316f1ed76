"""The event loop's verbs against the real API server: the same answers and errors as the
synchronous ones, the same retries, one kept connection per event loop."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from kubernetes import client
from prometheus_client import REGISTRY

from kuberth.exceptions import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    KubernetesUnavailableError,
    KuberthError,
    NotFoundError,
)
from kuberth.services.builders.tenant import tenant_user
from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import JSON, Identity, KubernetesApi
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.resources import DeploymentStorage, ServiceStorage
from tests.integration.conftest import TEST_LABEL
from tests.integration.http.test_throttling import (  # noqa: F401 - fixtures
    HoldingWebhook,
    refuse_deployments,
    throttle,
)
from tests.integration.kubernetes import api_of
from tests.timing import eventually, scaled

T = TypeVar("T")


def run(api: KubernetesApi, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on an event loop of its own, closing that loop's session after it."""

    async def main() -> T:
        try:
            return await work
        finally:
            await api.aclose()

    return asyncio.run(main())


@pytest.fixture
def tenant(
    admin_api: client.ApiClient, namespace: str, new_id: Callable[[], int]
) -> Iterator[tuple[int, Identity]]:
    """A tenant's id and identity: Kubernetes' ``edit`` in the test's namespace, which it may read
    (the throttling fixture's probe reads it), and nothing else."""
    github_id = new_id()
    user = tenant_user(github_id)
    name = f"kt-async-{secrets.token_hex(3)}"
    labels = {TEST_LABEL: "true"}
    rbac = client.RbacAuthorizationV1Api(admin_api)
    subjects = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "tenant-edit"},
            "roleRef": {
                "kind": "ClusterRole",
                "name": "edit",
                "apiGroup": "rbac.authorization.k8s.io",
            },
            "subjects": subjects,
        },
    )
    rbac.create_cluster_role(
        {
            "metadata": {"name": name, "labels": labels},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces"],
                    "verbs": ["get"],
                    "resourceNames": [namespace],
                }
            ],
        }
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name, "labels": labels},
            "roleRef": {
                "kind": "ClusterRole",
                "name": name,
                "apiGroup": "rbac.authorization.k8s.io",
            },
            "subjects": subjects,
        }
    )
    try:
        yield github_id, Identity(user=user)
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


def service(name: str, **spec: Any) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec},
    }


def deployment(name: str, replicas: Any = 1) -> JSON:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


async def both_refuse(
    sync: Callable[[], object],
    asynchronous: Callable[[], Awaitable[object]],
    *,
    same_message: bool = True,
) -> KuberthError:
    """The error the synchronous and the event loop's call both raise, asserted the same (the
    message too, unless it quotes an object that changes in between)."""
    with pytest.raises(KuberthError) as sync_error:
        sync()
    with pytest.raises(KuberthError) as async_error:
        await asynchronous()
    assert type(async_error.value) is type(sync_error.value)
    if same_message:
        assert async_error.value.message == sync_error.value.message
    assert async_error.value.field == sync_error.value.field
    return async_error.value


def test_the_async_verbs_answer_as_the_sync_ones(
    api: KubernetesApi, namespace: str, tenant: tuple[int, Identity]
) -> None:
    _, identity = tenant
    services = ServiceStorage(api)
    on = {"namespace": namespace, "identity": identity}

    async def scenario() -> None:
        created = await services.acreate(service("web"), **on)
        assert created["metadata"]["namespace"] == namespace
        assert created == services.read("web", **on)
        assert await services.aread("web", **on) == created

        services.create(service("api"), **on)
        listed = await services.alist(label_selector="app in (web,api)", **on)
        assert [s["metadata"]["name"] for s in listed["items"]] == ["api", "web"]
        assert listed["items"] == services.list(label_selector="app in (web,api)", **on)["items"]
        selected = await services.alist(field_selector="metadata.name=web", **on)
        assert selected["items"] == listed["items"][1:]  # items carry no kind nor apiVersion

        patched = await services.apatch("web", {"metadata": {"labels": {"tier": "front"}}}, **on)
        assert patched["metadata"]["labels"] == {"app": "web", "tier": "front"}
        assert patched == services.read("web", **on)

        patched["spec"]["ports"][0]["port"] = 8080
        replaced = await services.areplace(patched, identity=identity)
        assert replaced["spec"]["ports"][0]["port"] == 8080
        assert replaced == services.read("web", **on)

        deleted = await services.adelete("web", **on)
        assert deleted is not None
        assert await services.aread("web", **on) is None
        assert await services.adelete("web", **on) is None  # already gone: done
        assert services.delete("web", **on) is None

        assert await api.arequest_text("/version") == api.request_text("/version")

    run(api, scenario())


def test_a_watch_on_the_event_loop_sees_changes_as_the_sync_one_does(
    api: KubernetesApi, namespace: str, tenant: tuple[int, Identity]
) -> None:
    """Events as they come for the one object named, from the version given, as the synchronous
    watch sees them; leaving the context closes it."""
    _, identity = tenant
    services = ServiceStorage(api)
    on = {"namespace": namespace, "identity": identity}
    created = services.create(service("web"), **on)
    services.create(service("other"), **on)
    version = created["metadata"]["resourceVersion"]

    async def scenario() -> None:
        watch = services.awatch("web", timeout=scaled(20), resource_version=version, **on)
        async with watch as events:
            services.patch("other", {"metadata": {"labels": {"seen": "no"}}}, **on)
            services.patch("web", {"metadata": {"labels": {"seen": "yes"}}}, **on)
            event = await asyncio.wait_for(anext(events), scaled(20))
        assert event["type"] == "MODIFIED"
        assert event["object"]["metadata"]["labels"]["seen"] == "yes"
        synced = next(iter(services.watch("web", timeout=5, resource_version=version, **on)))
        assert synced["object"] == event["object"]

    run(api, scenario())


def test_a_subresource_is_patched_on_the_event_loop(
    api: KubernetesApi, namespace: str, tenant: tuple[int, Identity]
) -> None:
    _, identity = tenant
    deployments = DeploymentStorage(api)
    on = {"namespace": namespace, "identity": identity}

    async def scenario() -> None:
        await deployments.acreate(deployment("web"), **on)
        scale = await deployments.apatch(
            "web", {"spec": {"replicas": 3}}, subresource="scale", **on
        )
        assert scale["kind"] == "Scale"
        assert scale["spec"]["replicas"] == 3
        assert (await deployments.aread("web", **on))["spec"]["replicas"] == 3

    run(api, scenario())


def test_refusals_translate_as_the_sync_ones(
    api: KubernetesApi, namespace: str, tenant: tuple[int, Identity]
) -> None:
    _, identity = tenant
    services, deployments = ServiceStorage(api), DeploymentStorage(api)
    on = {"namespace": namespace, "identity": identity}

    async def scenario() -> None:
        missing = await both_refuse(
            lambda: services.patch("gone", {}, **on),
            lambda: services.apatch("gone", {}, **on),
        )
        assert isinstance(missing, NotFoundError)
        assert missing.message == f"service gone in {namespace} not found"

        await services.acreate(service("web"), **on)
        exists = await both_refuse(
            lambda: services.create(service("web"), **on),
            lambda: services.acreate(service("web"), **on),
        )
        assert isinstance(exists, ConflictError)
        assert "already exists" in exists.message

        stale = services.read("web", **on)
        services.patch("web", {"metadata": {"labels": {"v": "2"}}}, **on)
        conflict = await both_refuse(
            lambda: services.replace(stale, identity=identity),
            lambda: services.areplace(stale, identity=identity),
        )
        assert isinstance(conflict, ConflictError)
        assert "has been modified" in conflict.message

        elsewhere = await both_refuse(
            lambda: services.list(namespace="default", identity=identity),
            lambda: services.alist(namespace="default", identity=identity),
        )
        assert isinstance(elsewhere, ForbiddenError)

        invalid = await both_refuse(
            lambda: services.create(service("bad", ports=[{"port": 70000}]), **on),
            lambda: services.acreate(service("bad", ports=[{"port": 70000}]), **on),
        )
        assert isinstance(invalid, InvalidInputError)
        assert invalid.field == "spec.ports[0].port"

        # Bodies Kubernetes cannot decode: the field is named all the same.
        undecodable = await both_refuse(
            lambda: deployments.create(deployment("w", replicas="3"), **on),
            lambda: deployments.acreate(deployment("w", replicas="3"), **on),
        )
        assert isinstance(undecodable, InvalidInputError)
        assert undecodable.field == "spec.replicas"
        await deployments.acreate(deployment("w"), **on)
        patch = {"spec": {"replicas": "x"}}
        patched = await both_refuse(
            lambda: deployments.patch("w", patch, **on),
            lambda: deployments.apatch("w", patch, **on),
            same_message=False,  # it quotes the Deployment, which its controller updates
        )
        assert isinstance(patched, InvalidInputError)
        assert patched.field == "spec.replicas"

    run(api, scenario())


def _requests(verb: str, code: str) -> float:
    labels = {"verb": verb, "code": code}
    return REGISTRY.get_sample_value("kuberth_kubernetes_requests_total", labels) or 0.0


def _unreachable_api(kubeconfig: Path, port: int, timeout: float) -> KubernetesApi:
    api_client = make_api_client(Settings(kubeconfig=kubeconfig))
    api_client.configuration.host = f"https://127.0.0.1:{port}"
    return KubernetesApi(api_client, timeout=timeout, retry_after=7)


def test_an_unreachable_server_is_unavailable(kubeconfig: Path) -> None:
    """Nothing listening, or a server that never answers (bounded by the timeout): a 503."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        refused = _unreachable_api(kubeconfig, closed.getsockname()[1], timeout=5)
        before = _requests("GET", "unreachable")
        with pytest.raises(KubernetesUnavailableError, match="unreachable") as error:
            run(refused, refused.arequest("GET", "/api/v1/namespaces"))
        assert error.value.retry_after == 7
        assert _requests("GET", "unreachable") == before + 1

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connects, then never answers the TLS handshake
        mute = _unreachable_api(kubeconfig, silent.getsockname()[1], timeout=0.5)
        started = time.monotonic()
        with pytest.raises(KubernetesUnavailableError, match="unreachable"):
            run(mute, mute.arequest("GET", "/api/v1/namespaces"))
        assert time.monotonic() - started < scaled(5)


def _connections_to(port: int) -> int:
    """This process's established TCP connections to ``port`` (from /proc)."""
    sockets = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone
            sockets.add(str(fd.readlink()))
    count = 0
    for table in ("tcp", "tcp6"):
        for line in (Path("/proc/net") / table).read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += f"socket:[{inode}]" in sockets
    return count


def test_one_kept_connection_per_event_loop_closed_by_aclose(
    api: KubernetesApi, namespace: str
) -> None:
    port = urlsplit(api.server_url).port
    services = ServiceStorage(api)

    async def connections_after_closing() -> int:
        """Connections once ``aclose`` has closed the loop's session (a moment to let go)."""
        await api.aclose()
        for _ in range(100):
            if _connections_to(port) == before:
                break
            await asyncio.sleep(0.01)
        return _connections_to(port)

    async def scenario() -> None:
        for _ in range(5):
            assert await services.alist(namespace=namespace) is not None
        assert _connections_to(port) == before + 1  # one connection, kept and reused
        await asyncio.gather(*(services.aread("x", namespace=namespace) for _ in range(3)))
        assert _connections_to(port) >= before + 1
        assert await connections_after_closing() == before
        # A request after closing is answered on a new session.
        assert await services.aread("x", namespace=namespace) is None
        assert _connections_to(port) == before + 1

    before = _connections_to(port)
    run(api, scenario())
    # Another event loop has its own session; each asyncio.run closed its own.
    run(api, services.alist(namespace=namespace))
    assert _connections_to(port) == before


# -- the retries, provoked as tests/integration/http/test_throttling.py does --------------------


def test_a_short_throttle_is_waited_out_on_the_event_loop(
    kubeconfig: Path,
    namespace: str,
    tenant: tuple[int, Identity],
    throttle: Callable[[int, str], contextlib.AbstractContextManager[HoldingWebhook]],  # noqa: F811
) -> None:
    github_id, identity = tenant
    api = api_of(kubeconfig, throttle_budget=scaled(30))
    with throttle(github_id, namespace) as webhook:
        sent, throttled = api.requests_sent, api.throttled_retries

        def release_after_the_first_retry() -> None:
            eventually(
                lambda: api.throttled_retries > throttled, within=30, what="a throttled retry"
            )
            webhook.released.set()

        releaser = threading.Thread(target=release_after_the_first_retry, daemon=True)
        releaser.start()
        started = time.monotonic()
        listed = run(api, ServiceStorage(api).alist(namespace=namespace, identity=identity))
        took = time.monotonic() - started
        releaser.join()
    assert listed["items"] == []
    retries = api.throttled_retries - throttled
    assert 1 <= retries <= 3, retries
    assert api.requests_sent - sent == retries + 1
    assert took >= 1.0  # the API server's Retry-After (1 s) was honoured
    api.close()


def test_a_long_throttle_is_unavailable_with_the_api_servers_retry_after(
    kubeconfig: Path,
    namespace: str,
    tenant: tuple[int, Identity],
    throttle: Callable[[int, str], contextlib.AbstractContextManager[HoldingWebhook]],  # noqa: F811
) -> None:
    github_id, identity = tenant
    api = api_of(kubeconfig, retry_after=9, throttle_budget=2)
    with throttle(github_id, namespace):
        throttled = api.throttled_retries
        with pytest.raises(KubernetesUnavailableError, match="busy") as error:
            run(
                api,
                ServiceStorage(api).acreate(service("web"), namespace=namespace, identity=identity),
            )
        assert api.throttled_retries - throttled >= 1
    assert error.value.retry_after != 9  # the API server's own, not Kuberth's default
    assert error.value.retry_after >= 1
    assert ServiceStorage(api).read("web", namespace=namespace) is None  # nothing made
    api.close()


def _quota_conflict_retries() -> float:
    return REGISTRY.get_sample_value("kuberth_kubernetes_quota_conflict_retries_total") or 0.0


def test_quota_admissions_own_conflict_is_retried_on_the_event_loop(
    api: KubernetesApi,
    namespace: str,
    refuse_deployments: Callable[..., contextlib.AbstractContextManager[list[str]]],  # noqa: F811
) -> None:
    deployments = DeploymentStorage(api)
    with refuse_deployments(namespace, times=2, kind="resourcequotas") as refused:
        retried = _quota_conflict_retries()
        created = run(api, deployments.acreate(deployment("w"), namespace=namespace))
    assert created["metadata"]["name"] == "w"
    assert refused == ["w", "w"]
    assert _quota_conflict_retries() - retried == 2


def test_a_conflict_on_the_object_itself_is_not_retried_on_the_event_loop(
    api: KubernetesApi,
    namespace: str,
    refuse_deployments: Callable[..., contextlib.AbstractContextManager[list[str]]],  # noqa: F811
) -> None:
    deployments = DeploymentStorage(api)
    with refuse_deployments(namespace, times=1, kind="deployments") as refused:
        retried = _quota_conflict_retries()
        with pytest.raises(ConflictError):
            run(api, deployments.acreate(deployment("w"), namespace=namespace))
    assert refused == ["w"]  # sent once
    assert _quota_conflict_retries() == retried
