"""The one watch under every wait, against the real API server: done, deleted, timed out,
recovering from a cut connection, and from a real 410.

A 410 from a kind the API server keeps a watch cache for is not at the test's command: the cache
answers a watch from an old version (even "1") with the current state as ADDED while its window
of events reaches back that far (it holds ~100 000 events of a kind for 75 s). Events have no
watch cache: their watches are served by etcd itself, so a version compacted away (the test
compacts etcd, as the API server does every five minutes) is refused for certain, with an ERROR
event of code 410 (reason Expired).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client import REGISTRY

from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.errors import KubernetesExpiredError, Status, from_status
from kuberth.storage.kubernetes.resources import EventStorage, Kind, ServiceStorage
from kuberth.storage.kubernetes.watching import (
    WatchEndedError,
    list_every,
    watch_every,
    watch_until,
)
from tests.integration.cutting import CuttingProxy
from tests.integration.etcd import compact_etcd
from tests.integration.storage.test_kubernetes_async import run, service
from tests.timing import scaled


def labelled(key: str, value: str) -> JSON:
    return {"metadata": {"labels": {key: value}}}


def has_label(key: str, value: str) -> object:
    return lambda obj: obj["metadata"].get("labels", {}).get(key) == value


def test_done_when_the_condition_holds_seen_from_the_version_given(
    api: KubernetesApi,
    namespace: str,
) -> None:
    """Changes made before the watch opens are seen too: it starts from ``since``'s version."""
    services = ServiceStorage(api)
    created = services.create(service("web"), namespace=namespace)
    services.patch("web", labelled("ready", "no"), namespace=namespace)
    services.patch("web", labelled("ready", "yes"), namespace=namespace)
    services.patch("web", labelled("ready", "later"), namespace=namespace)

    watched = run(
        api,
        watch_until(
            services,
            "web",
            namespace=namespace,
            since=created,
            until=has_label("ready", "yes"),
            timeout=scaled(20),
        ),
    )
    assert watched.ended == "done"
    assert watched.last_seen["metadata"]["labels"]["ready"] == "yes"  # the first that held

    # Already done: no request at all.
    sent = api.requests_sent
    again = run(api, watch_until(services, "web", since=watched.last_seen, until=bool, timeout=1))
    assert again == watched
    assert api.requests_sent == sent


def test_deleted_while_watched(api: KubernetesApi, namespace: str) -> None:
    services = ServiceStorage(api)
    created = services.create(service("web"), namespace=namespace)

    async def scenario() -> tuple[str, JSON]:
        waiting = asyncio.create_task(
            watch_until(services, "web", namespace=namespace, since=created, timeout=scaled(20))
        )
        await services.apatch("web", labelled("seen", "yes"), namespace=namespace)
        await services.adelete("web", namespace=namespace)
        watched = await waiting
        return watched.ended, watched.last_seen

    ended, last = run(api, scenario())
    assert ended == "deleted"
    assert last["metadata"]["labels"]["seen"] == "yes"


def test_timeout_with_the_last_state_seen(api: KubernetesApi, namespace: str) -> None:
    services = ServiceStorage(api)
    created = services.create(service("web"), namespace=namespace)
    services.patch("web", labelled("seen", "yes"), namespace=namespace)
    started = time.monotonic()
    watched = run(
        api,
        watch_until(
            services,
            "web",
            namespace=namespace,
            since=created,
            until=has_label("never", "true"),
            timeout=2,
        ),
    )
    took = time.monotonic() - started
    assert watched.ended == "timeout"
    assert watched.last_seen["metadata"]["labels"]["seen"] == "yes"
    assert 2 <= took < 2 + scaled(3)


def _watches(code: str) -> float:
    labels = {"verb": "WATCH", "code": code}
    return REGISTRY.get_sample_value("kuberth_kubernetes_requests_total", labels) or 0.0


@pytest.mark.parametrize(
    ("refuse", "change"),
    [(False, "ready"), (True, "ready"), (False, "delete")],
    ids=["cut", "cut-and-refused-a-while", "cut-and-deleted-meanwhile"],
)
def test_a_cut_watch_pauses_reads_and_watches_again(
    api: KubernetesApi,
    kubeconfig: Path,
    namespace: str,
    refuse: bool,
    change: str,
) -> None:
    """The watch's connection cut (and, as an API server restarting does, new connections
    refused a while): a pause, a read and a new watch, which see the change made meanwhile; a
    read that finds nothing is a deletion."""
    direct = ServiceStorage(api)
    created = direct.create(service("web"), namespace=namespace)
    upstream = urlsplit(api.server_url).port or 443

    async def scenario() -> tuple[str, JSON, float]:
        proxy = CuttingProxy(upstream)
        await proxy.start()
        client = make_api_client(Settings(kubeconfig=kubeconfig))
        client.configuration.host = f"https://127.0.0.1:{proxy.port}"
        proxied = KubernetesApi(client, timeout=5, retry_after=7)
        try:
            watches = _watches("200")
            failed = _watches("unreachable")
            waiting = asyncio.create_task(
                watch_until(
                    ServiceStorage(proxied),
                    "web",
                    namespace=namespace,
                    since=created,
                    until=has_label("ready", "yes"),
                    timeout=scaled(30),
                )
            )
            while _watches("200") == watches:  # the watch is open (its response has come)
                await asyncio.sleep(0.01)
            await proxy.cut(refuse=refuse)
            assert not waiting.done()
            if change == "delete":
                await direct.adelete("web", namespace=namespace)
            else:
                await direct.apatch("web", labelled("ready", "yes"), namespace=namespace)
            if refuse:
                while _watches("unreachable") == failed:  # a new watch refused
                    await asyncio.sleep(0.01)
                await proxy.start()
            watched = await waiting
            return watched.ended, watched.last_seen, _watches("200") - watches
        finally:
            await proxy.cut(refuse=True)
            await proxied.aclose()
            client.close()

    ended, last, opened = run(api, scenario())
    if change == "delete":
        assert ended == "deleted"
        assert last["metadata"]["uid"] == created["metadata"]["uid"]
    else:
        assert ended == "done"
        assert last["metadata"]["labels"]["ready"] == "yes"
    assert opened >= 1  # the cut one (then, if the read came before the change, another)


def event(name: str, namespace: str, **labels: str) -> JSON:
    """A core/v1 Event about nothing in particular (Events are what etcd serves watches of)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "labels": labels},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": namespace},
        "reason": "Test",
        "message": "a test's",
        "type": "Normal",
    }


def _compacted_past(version: str, events: EventStorage, kubeconfig: Path, namespace: str) -> None:
    """Compact etcd past ``version`` and the first revision after it, so a watch from it (which
    starts at the next revision) is refused: one more write first makes sure there is one."""
    events.create(event(f"later-{time.monotonic_ns()}", namespace), namespace=namespace)
    assert compact_etcd(kubeconfig) > int(version) + 1


def test_a_wait_from_a_compacted_version_reads_and_finishes(
    api: KubernetesApi,
    kubeconfig: Path,
    namespace: str,
) -> None:
    """A real 410: the watch from the version given ends in an ERROR event (Expired, read as the
    Kubernetes error it is); the wait reads the object afresh, which holds, and is done."""
    events = EventStorage(api)
    created = events.create(event("e", namespace), namespace=namespace)
    events.patch("e", labelled("ready", "yes"), namespace=namespace)
    _compacted_past(created["metadata"]["resourceVersion"], events, kubeconfig, namespace)

    async def scenario() -> tuple[JSON, int, str, JSON]:
        watch = events.awatch(
            "e",
            namespace=namespace,
            timeout=scaled(10),
            resource_version=created["metadata"]["resourceVersion"],
        )
        async with watch as stream:
            first = await anext(stream)
        sent = api.requests_sent
        watched = await watch_until(
            events,
            "e",
            namespace=namespace,
            since=created,
            until=has_label("ready", "yes"),
            timeout=scaled(20),
        )
        return first, api.requests_sent - sent, watched.ended, watched.last_seen

    first, requests, ended, last = run(api, scenario())
    assert first["type"] == "ERROR"
    expired = from_status(Status.of(first["object"]), what="event e", retry_after=1)
    assert isinstance(expired, KubernetesExpiredError)
    assert expired.status.code == 410
    assert expired.message == "The resourceVersion for the provided watch is too old."
    assert ended == "done"
    assert last["metadata"]["labels"]["ready"] == "yes"
    assert requests == 2  # the watch that ended in ERROR, then one read (which held)


EVENTS = Kind("Event", "v1", "events")


def test_a_collection_watched_from_a_compacted_version_is_listed_again(
    api: KubernetesApi,
    kubeconfig: Path,
    namespace: str,
) -> None:
    """A real 410 ends the collection's watch (WatchEndedError); a new list sees what changed
    meanwhile, and a watch from the list's version goes on until the server ends it."""
    events = EventStorage(api)
    label = f"kt-gone-{time.monotonic_ns()}"
    selected = {"label_selector": f"{label}=yes"}
    events.create(event("a", namespace, **{label: "yes"}), namespace=namespace)

    def names(into: set[str]) -> Callable[[JSON], None]:
        return lambda obj: into.add(obj["metadata"]["name"])

    first: set[str] = set()
    version = run(api, list_every(api, EVENTS, page_size=10, each=names(first), **selected))
    events.create(event("b", namespace, **{label: "yes"}), namespace=namespace)
    _compacted_past(version, events, kubeconfig, namespace)

    with pytest.raises(WatchEndedError, match="is too old"):
        run(
            api,
            watch_every(
                api, EVENTS, version=version, timeout=scaled(5), each=lambda *_: None, **selected
            ),
        )

    listed: set[str] = set()
    version = run(api, list_every(api, EVENTS, page_size=1, each=names(listed), **selected))
    events.create(event("c", namespace, **{label: "yes"}), namespace=namespace)
    changes: list[tuple[str, str]] = []
    ended_at = run(
        api,
        watch_every(
            api,
            EVENTS,
            version=version,
            timeout=2,
            each=lambda change, obj: changes.append((change, obj["metadata"]["name"])),
            **selected,
        ),
    )
    assert (first, listed) == ({"a"}, {"a", "b"})
    assert changes == [("ADDED", "c")]
    assert int(ended_at) > int(version)
