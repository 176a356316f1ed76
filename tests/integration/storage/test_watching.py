"""The one watch under every wait, against the real API server: done, deleted, timed out, and
recovering from a cut connection.

An ERROR event (410 Gone: the version is too old) could not be provoked here: this API server's
watch cache answers a watch from an old version (even "1") with the current state as ADDED, and
one from a future version with silence, never an ERROR; a 410 needs its window of events to have
moved past the version (~100 000 events of a kind in 75 s), or etcd compacted under a watch that
bypasses the cache. Its recovery (one read and a new watch) is the one a cut connection takes,
tested here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client import REGISTRY

from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.resources import ServiceStorage
from kuberth.storage.kubernetes.watching import watch_until
from tests.integration.cutting import CuttingProxy
from tests.integration.storage.test_kubernetes_async import (  # noqa: F401 - fixture
    api,
    run,
    service,
)
from tests.timing import scaled


def labelled(key: str, value: str) -> JSON:
    return {"metadata": {"labels": {key: value}}}


def has_label(key: str, value: str) -> object:
    return lambda obj: obj["metadata"].get("labels", {}).get(key) == value


def test_done_when_the_condition_holds_seen_from_the_version_given(
    api: KubernetesApi,  # noqa: F811
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


def test_deleted_while_watched(api: KubernetesApi, namespace: str) -> None:  # noqa: F811
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


def test_timeout_with_the_last_state_seen(api: KubernetesApi, namespace: str) -> None:  # noqa: F811
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
    api: KubernetesApi,  # noqa: F811
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
