"""The informer against the real control plane: a copy that follows every change, quickly."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.informer import Informer, _WatchEndedError
from kuberth.storage.kubernetes.resources import Kind
from tests.timing import eventually

CONFIG_MAPS = Kind("ConfigMap", "v1", "configmaps")
EVENTS = Kind("Event", "v1", "events")


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[KubernetesApi]:
    kubernetes = KubernetesApi(
        make_api_client(Settings(kubeconfig=kubeconfig)), timeout=10, retry_after=1
    )
    yield kubernetes
    kubernetes.close()


def _value(config_map: JSON) -> str | None:
    value: str | None = (config_map.get("data") or {}).get("v")
    return value


def _caught_up(check: Callable[[], bool]) -> None:
    """How fast is a benchmark's figure (bench/scale.py: a change visible); here, that it is."""
    eventually(check, within=10, what="the copy caught up", interval=0.01)


def test_the_copy_follows_creates_changes_and_deletes(
    api: KubernetesApi, admin_api: client.ApiClient, namespace: str
) -> None:
    label = f"kt-informer-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin_api)

    def config_map(name: str, value: str) -> client.V1ConfigMap:
        meta = client.V1ObjectMeta(name=name, labels={label: "yes"})
        return client.V1ConfigMap(metadata=meta, data={"v": value})

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


def _compact_etcd(kubeconfig: Path) -> None:
    """Compact the local plane's etcd up to now, through etcd's own JSON gateway.

    The API server compacts every five minutes: a version is only reliably gone after this.
    """
    state = kubeconfig.parent / "state.json"  # the local plane's (kuberth.cluster.components)
    if not state.exists():
        pytest.skip("needs the local plane's etcd (KUBECONFIG names another cluster)")
    etcd = f"http://127.0.0.1:{json.loads(state.read_text())['ports']['etcd_client']}"
    key = base64.b64encode(b"/").decode()
    revision = httpx.post(f"{etcd}/v3/kv/range", json={"key": key, "limit": 1}, timeout=30).json()[
        "header"
    ]["revision"]
    compacted = httpx.post(
        f"{etcd}/v3/kv/compaction", json={"revision": revision, "physical": True}, timeout=60
    )
    assert compacted.status_code == 200, compacted.text


def test_a_watch_from_a_compacted_version_asks_for_a_new_list(
    api: KubernetesApi, kubeconfig: Path
) -> None:
    """Events, because the API server keeps no watch cache for them: their watches are served by
    etcd itself, where a compacted version is gone for certain. (A cached kind serves old versions
    for as long as its cache holds them, which depends on the traffic before the test.)"""
    _compact_etcd(kubeconfig)
    informer = Informer[JSON](api, EVENTS, label_selector="kt-none=x", project=dict)
    with pytest.raises(_WatchEndedError, match="too old"):
        informer._watch("1")  # compacted away: 410 Expired


def test_the_index_follows_every_change_of_a_values_keys(
    api: KubernetesApi, admin_api: client.ApiClient, namespace: str
) -> None:
    """Keys (here: the words of a ConfigMap's value) -> objects, kept right through creates,
    changes that drop and add keys, deletes and a re-list."""
    label = f"kt-index-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin_api)

    def config_map(name: str, value: str) -> client.V1ConfigMap:
        meta = client.V1ObjectMeta(name=name, labels={label: "yes"})
        return client.V1ConfigMap(metadata=meta, data={"v": value})

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
        informer._list()  # a re-list rebuilds the index from the copy it replaces
        assert informer.holders("green") == {(namespace, "a")}
        assert informer.holders("blue") == set()
        assert informer._index.keys() == {"green"}  # no empty entries pile up
    finally:
        informer.stop()
