"""The informer against the real control plane: a copy that follows every change, quickly."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kubernetes import client
from prometheus_client import REGISTRY

from kuberth.exceptions import KubernetesUnavailableError
from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.informer import Informer
from kuberth.storage.kubernetes.resources import Kind
from kuberth.storage.kubernetes.watching import WatchEndedError
from tests.integration.cutting import CuttingProxy
from tests.integration.etcd import compact_etcd
from tests.integration.storage.test_kubernetes_async import run
from tests.kubeconfigs import unreachable
from tests.timing import eventually, scaled

CONFIG_MAPS = Kind("ConfigMap", "v1", "configmaps")
EVENTS = Kind("Event", "v1", "events")


def _value(config_map: JSON) -> str | None:
    value: str | None = (config_map.get("data") or {}).get("v")
    return value


def _caught_up(check: Callable[[], bool]) -> None:
    """How fast is a benchmark's figure (bench/scale.py: a change visible); here, that it is."""
    eventually(check, within=10, what="the copy caught up", interval=0.01)


def labelled_config_map(label: str, name: str, value: str) -> client.V1ConfigMap:
    """A ConfigMap the test's copy selects (by ``label``), its value under ``v``."""
    meta = client.V1ObjectMeta(name=name, labels={label: "yes"})
    return client.V1ConfigMap(metadata=meta, data={"v": value})


def test_the_copy_follows_creates_changes_and_deletes(
    api: KubernetesApi, admin_api: client.ApiClient, namespace: str
) -> None:
    label = f"kt-informer-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin_api)

    config_map = partial(labelled_config_map, label)

    core.create_namespaced_config_map(namespace, config_map("before", "1"))
    core.create_namespaced_config_map(  # not selected: never copied
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="other"))
    )
    informer = Informer[str | None](
        api, CONFIG_MAPS, label_selector=f"{label}=yes", project=_value, page_size=1
    )
    try:
        informer.require_synced(10)
        assert informer.get("before", namespace=namespace) == "1"
        assert informer.get("other", namespace=namespace) is None
        assert len(informer) == 1

        core.create_namespaced_config_map(namespace, config_map("after", "2"))
        _caught_up(lambda: informer.get("after", namespace=namespace) == "2")
        core.patch_namespaced_config_map("before", namespace, {"data": {"v": "3"}})
        _caught_up(lambda: informer.get("before", namespace=namespace) == "3")
        core.delete_namespaced_config_map("after", namespace)
        _caught_up(lambda: len(informer) == 1)
        # Unlabelled: it leaves the selection, which the watch reports as a deletion.
        core.patch_namespaced_config_map(
            "before", namespace, {"metadata": {"labels": {label: "no"}}}
        )
        _caught_up(lambda: len(informer) == 0)
        assert informer.lists == 1
    finally:
        informer.stop()


def test_a_watch_from_a_compacted_version_asks_for_a_new_list(
    api: KubernetesApi, kubeconfig: Path
) -> None:
    """Events, because the API server keeps no watch cache for them: their watches are served by
    etcd itself, where a compacted version is gone for certain. (A cached kind serves old versions
    for as long as its cache holds them, which depends on the traffic before the test.)"""
    compact_etcd(kubeconfig)
    informer = Informer[JSON](api, EVENTS, label_selector="kt-none=x", project=dict)
    with pytest.raises(WatchEndedError, match="too old"):
        run(api, informer._watch("1"))  # compacted away: 410 Expired


def test_the_index_follows_every_change_of_a_values_keys(
    api: KubernetesApi, admin_api: client.ApiClient, namespace: str
) -> None:
    """Keys (here: the words of a ConfigMap's value) -> objects, kept right through creates,
    changes that drop and add keys, deletes and a re-list."""
    label = f"kt-index-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin_api)

    config_map = partial(labelled_config_map, label)

    core.create_namespaced_config_map(namespace, config_map("a", "red blue"))
    informer = Informer[str | None](
        api,
        CONFIG_MAPS,
        label_selector=f"{label}=yes",
        project=_value,
        index=lambda value: (value or "").split(),
    )
    try:
        informer.require_synced(10)
        assert informer.holders("red") == {(namespace, "a")}
        core.create_namespaced_config_map(namespace, config_map("b", "blue"))
        _caught_up(lambda: informer.holders("blue") == {(namespace, "a"), (namespace, "b")})
        core.patch_namespaced_config_map("a", namespace, {"data": {"v": "green"}})
        _caught_up(lambda: informer.holders("green") == {(namespace, "a")})
        assert informer.holders("red") == set()
        assert informer.holders("blue") == {(namespace, "b")}
        core.delete_namespaced_config_map("b", namespace)
        _caught_up(lambda: informer.holders("blue") == set())
        run(api, informer._list())  # a re-list rebuilds the index from the copy it replaces
        assert informer.holders("green") == {(namespace, "a")}
        assert informer.holders("blue") == set()
        assert informer._index.keys() == {"green"}  # no empty entries pile up
    finally:
        informer.stop()


@pytest.mark.parametrize("refuse", [False, True], ids=["cut", "cut-and-refused-a-while"])
def test_a_cut_watch_costs_a_new_list_that_sees_what_changed_meanwhile(
    api: KubernetesApi,
    admin_api: client.ApiClient,
    kubeconfig: Path,
    namespace: str,
    refuse: bool,
) -> None:
    """The copy as a task of an event loop, its watch's connection cut (and new connections
    refused a while, as a restarting API server does): it lists again, catches up with the
    change made while it was cut off, and follows changes again."""
    label = f"kt-cut-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin_api)

    config_map = partial(labelled_config_map, label)

    core.create_namespaced_config_map(namespace, config_map("before", "1"))
    upstream = urlsplit(api.server_url).port or 443

    async def until(check: Callable[[], bool]) -> None:
        deadline = time.monotonic() + scaled(20)
        while not check():
            assert time.monotonic() < deadline, "the copy did not catch up"
            await asyncio.sleep(0.01)

    async def scenario() -> int:
        proxy = CuttingProxy(upstream)
        await proxy.start()
        proxied_client = make_api_client(Settings(kubeconfig=kubeconfig))
        proxied_client.configuration.host = f"https://127.0.0.1:{proxy.port}"
        proxied = KubernetesApi(proxied_client, timeout=5, retry_after=1)
        informer = Informer[str | None](
            proxied, CONFIG_MAPS, label_selector=f"{label}=yes", project=_value
        )
        informer.attach(asyncio.get_running_loop())
        try:
            watches = _sent("WATCH", "200")
            informer.start()
            await until(lambda: informer.synced and _sent("WATCH", "200") > watches)  # watching
            await proxy.cut(refuse=refuse)
            await asyncio.to_thread(
                core.patch_namespaced_config_map, "before", namespace, {"data": {"v": "2"}}
            )
            if refuse:
                failed = _sent("WATCH", "unreachable") + _sent("GET", "unreachable")
                await until(
                    lambda: _sent("WATCH", "unreachable") + _sent("GET", "unreachable") > failed
                )
                await proxy.start()
            await until(lambda: informer.get("before", namespace=namespace) == "2")
            await asyncio.to_thread(
                core.create_namespaced_config_map, namespace, config_map("after", "3")
            )
            await until(lambda: informer.get("after", namespace=namespace) == "3")
            return informer.lists
        finally:
            await informer.aclose()
            await proxy.cut(refuse=True)
            await proxied.aclose()
            proxied_client.close()

    lists = run(api, scenario())
    assert lists >= 2  # the first, and one after the cut (more while it was refused)
    if not refuse:
        assert lists == 2


def _sent(verb: str, code: str) -> float:
    """Requests of this process so far with this verb and result (a status, or unreachable)."""
    labels = {"verb": verb, "code": code}
    return REGISTRY.get_sample_value("kuberth_kubernetes_requests_total", labels) or 0.0


def test_a_cancelled_copy_closes_its_watch_without_a_warning(
    api: KubernetesApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kuberth")
    informer = Informer[str | None](
        api, CONFIG_MAPS, label_selector=f"kt-none-{secrets.token_hex(3)}=yes", project=_value
    )

    async def scenario() -> bool:
        informer.attach(asyncio.get_running_loop())
        watches = _sent("WATCH", "200")
        informer.start()
        deadline = time.monotonic() + scaled(20)
        while not (informer.synced and _sent("WATCH", "200") > watches):
            assert time.monotonic() < deadline, "the copy did not start watching"
            await asyncio.sleep(0.01)
        await informer.aclose()
        task = informer._task
        return task is not None and task.cancelled()

    assert run(api, scenario())
    assert [r.getMessage() for r in caplog.records if r.name.startswith("kuberth")] == []


def test_the_first_list_is_awaited_holding_no_thread(
    api: KubernetesApi, admin_api: client.ApiClient, namespace: str
) -> None:
    """A read on the event loop waits for the copy's first list on that loop: the copy's task
    runs on the same loop (a wait that blocked it would never end), and no worker thread is
    started. A copy running in a thread of its own wakes its waiter on the waiter's loop."""
    label = f"kt-{secrets.token_hex(3)}"
    client.CoreV1Api(admin_api).create_namespaced_config_map(
        namespace, labelled_config_map(label, "a", "1")
    )
    attached = Informer[str | None](api, CONFIG_MAPS, label_selector=f"{label}=yes", project=_value)
    own_thread = Informer[str | None](
        api, CONFIG_MAPS, label_selector=f"{label}=yes", project=_value
    )

    async def scenario() -> tuple[int, int]:
        attached.attach(asyncio.get_running_loop())
        threads = threading.active_count()
        await attached.arequire_synced(scaled(20))
        after = threading.active_count()
        await own_thread.arequire_synced(scaled(20))
        await attached.aclose()
        return threads, after

    try:
        threads, after = run(api, scenario())
    finally:
        own_thread.stop()
    assert after == threads
    assert attached.get("a", namespace=namespace) == own_thread.get("a", namespace=namespace) == "1"


def test_a_copy_that_cannot_list_is_unavailable_after_the_wait(tmp_path: Path) -> None:
    api = KubernetesApi(
        make_api_client(Settings(kubeconfig=unreachable(tmp_path / "kubeconfig"))),
        timeout=1,
        retry_after=3,
    )
    informer = Informer[str | None](api, CONFIG_MAPS, label_selector="x=yes", project=_value)

    async def scenario() -> None:
        informer.attach(asyncio.get_running_loop())
        try:
            with pytest.raises(KubernetesUnavailableError) as raised:
                await informer.arequire_synced(0.5)
            assert raised.value.retry_after == 3
            assert informer._waiters == []  # the waiter that gave up is gone
        finally:
            await informer.aclose()

    try:
        run(api, scenario())
    finally:
        api.close()
