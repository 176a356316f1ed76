"""The informer's bookkeeping, against a scripted API server: what a 410 or a deletion must do."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, cast

from kuberth.exceptions import KubernetesUnavailableError
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.informer import Informer
from kuberth.storage.kubernetes.resources import Kind
from tests.timing import scaled

KIND = Kind("ConfigMap", "v1", "configmaps")


def _obj(name: str, value: str, version: str, namespace: str = "ns") -> JSON:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": version},
        "data": {"v": value},
    }


class ScriptedApi:
    """Lists answer from ``lists`` in turn (one page each, or pages); watches yield ``watches``
    in turn and then block until the test ends."""

    retry_after = 1
    timeout = 10

    def __init__(self, lists: list[list[JSON]], watches: list[list[JSON]]) -> None:
        self.lists = lists
        self.watches = watches
        self.watch_versions: list[str] = []
        self.done = threading.Event()

    def request(self, method: str, path: str, *, query: Mapping[str, Any], **_: Any) -> JSON:
        pages = self.lists[0]
        index = int(query.get("continue", 0))
        page = pages[index]
        if index + 1 == len(pages):
            self.lists.pop(0)
        metadata = {"resourceVersion": page["version"]}
        if index + 1 < len(pages):
            metadata["continue"] = str(index + 1)
        return {"items": page["items"], "metadata": metadata}

    def watch(self, path: str, *, query: Mapping[str, Any], **_: Any) -> Iterator[JSON]:
        self.watch_versions.append(str(query["resourceVersion"]))
        if not self.watches:
            self.done.set()
            raise KubernetesUnavailableError("no more", retry_after=1)
        yield from self.watches.pop(0)

    async def arequest(self, method: str, path: str, **kwargs: Any) -> JSON:
        return self.request(method, path, **kwargs)

    @contextlib.asynccontextmanager
    async def awatch(self, path: str, **kwargs: Any) -> AsyncIterator[AsyncIterator[JSON]]:
        events = list(self.watch(path, **kwargs))

        async def each() -> AsyncIterator[JSON]:
            for event in events:
                yield event

        yield each()

    async def aclose(self) -> None:
        """No connections to close."""


def _informer(api: ScriptedApi) -> Informer[str]:
    return Informer[str](
        cast(KubernetesApi, api),
        KIND,
        label_selector="x",
        project=lambda obj: str(obj["data"]["v"]),
    )


def test_pages_are_joined_and_events_applied_in_order() -> None:
    api = ScriptedApi(
        lists=[
            [
                {"version": "10", "items": [_obj("a", "1", "5")]},
                {"version": "10", "items": [_obj("b", "2", "6")]},
            ]
        ],
        watches=[
            [
                {"type": "MODIFIED", "object": _obj("a", "3", "11")},
                {"type": "ADDED", "object": _obj("c", "4", "12", namespace="other")},
                {"type": "DELETED", "object": _obj("b", "2", "13")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
            ]
        ],
    )
    informer = _informer(api)
    informer.start()
    assert api.done.wait(scaled(5))
    informer.stop()
    assert informer.in_namespace("ns") == {"a": "3"}
    assert informer.get("c", namespace="other") == "4"
    assert len(informer) == 2
    # The first watch starts at the list's version, the next one where the last left off.
    assert api.watch_versions[:2] == ["10", "20"]


def test_a_410_lists_again_and_drops_what_was_deleted_meanwhile() -> None:
    api = ScriptedApi(
        lists=[
            [{"version": "10", "items": [_obj("a", "1", "5"), _obj("b", "2", "6")]}],
            [{"version": "30", "items": [_obj("a", "9", "25")]}],
        ],
        watches=[[{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]],
    )
    informer = _informer(api)
    informer.start()
    assert api.done.wait(scaled(5))
    informer.stop()
    assert informer.in_namespace("ns") == {"a": "9"}
    assert informer.lists == 2
    assert api.watch_versions == ["10", "30"]
