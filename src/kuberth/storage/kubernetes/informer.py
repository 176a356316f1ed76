"""A watch-fed, in-memory copy of one kind's objects (an informer), for reads that must not go to
the API server on every request, such as a figure per tenant on a page of 100 tenants.

It lists once, a page at a time, then watches from the list's resourceVersion with bookmarks. A
watch the server ends is resumed from the last version seen; a watch that fails (410 Gone: the
version was compacted away, or any other error) means listing again and replacing the copy whole,
so no change is missed and nothing deleted meanwhile lingers. Only what ``project`` keeps of each
object is stored: memory is the number of objects times the projection, whatever they weigh. An
optional ``index`` turns a projection into keys (an Ingress's hosts) and keeps key -> objects
current with the copy, so "which objects have key K" is a lookup, as client-go's indexers do.

It reads as Kuberth itself, not as a tenant: Kubernetes RBAC does not stand between a caller and
what it serves. Whoever reads from it must first decide, from the database, that the caller may see
the namespace (operators, or the namespace's owner).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from kuberth.exceptions import KubernetesUnavailableError, KuberthError
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.resources import Kind

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Objects per list page: bounds the memory a (re-)list needs on its way in.
PAGE_SIZE = 500
#: How long one watch request lasts before it is resumed (the server ends it then).
WATCH_SECONDS = 240.0
#: Longest wait between attempts while the API server cannot be reached.
MAX_BACKOFF = 30.0


class _WatchEndedError(Exception):
    """The watch cannot go on from the version held; list again."""


class Informer(Generic[T]):
    """The objects of one kind that match a label selector, as ``project`` reduces them, kept
    current by a background thread; keyed by (namespace, name)."""

    def __init__(
        self,
        api: KubernetesApi,
        kind: Kind,
        *,
        label_selector: str,
        project: Callable[[JSON], T],
        index: Callable[[T], Iterable[str]] | None = None,
        page_size: int = PAGE_SIZE,
        watch_seconds: float = WATCH_SECONDS,
    ) -> None:
        self._api = api
        self._kind = kind
        self._selector = label_selector
        self._project = project
        self._page_size = page_size
        self._watch_seconds = watch_seconds
        self._items: dict[str, dict[str, T]] = {}  # namespace ("" if none) -> name -> value
        #: ``index``'s keys of each value -> the (namespace, name) of the objects that have them,
        #: so "who has key K" is a dict lookup, not a scan of every object.
        self._keys = index
        self._index: dict[str, set[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Lists made so far (the first and every re-list), for measurements and tests.
        self.lists = 0

    # -- reading ----------------------------------------------------------------------------------

    def get(self, name: str, *, namespace: str | None = None) -> T | None:
        with self._lock:
            return self._items.get(namespace or "", {}).get(name)

    def in_namespace(self, namespace: str) -> dict[str, T]:
        """The namespace's objects by name (a copy: the caller may keep it)."""
        with self._lock:
            return dict(self._items.get(namespace, {}))

    def holders(self, key: str) -> set[tuple[str, str]]:
        """The (namespace, name) of every object whose value has ``key`` in the index."""
        with self._lock:
            return set(self._index.get(key, ()))

    def __len__(self) -> int:
        with self._lock:
            return sum(len(names) for names in self._items.values())

    @property
    def synced(self) -> bool:
        """True once a first list has been stored (it may lag while the watch is resumed)."""
        return self._synced.is_set()

    def require_synced(self, timeout: float) -> None:
        """Start if need be and wait for the first list.

        Raises:
            KubernetesUnavailableError: no list has been stored within ``timeout`` seconds.
        """
        self.start()
        if not self._synced.wait(timeout):
            raise KubernetesUnavailableError(
                f"the copy of the {self._kind.plural} is not ready yet",
                retry_after=self._api.retry_after,
            )

    # -- running ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background list-and-watch (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"kuberth-informer-{self._kind.plural}", daemon=True
            )
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it does when its current request returns."""
        self._stop.set()

    def _run(self) -> None:
        backoff = 0.0  # grows while attempts keep failing; back to 0 once a watch runs its course
        while not self._stop.is_set():
            try:
                version = self._list()
                while not self._stop.is_set():
                    version = self._watch(version)
                    backoff = 0.0
            except _WatchEndedError as why:
                # Usually a 410 after compaction: list again at once, unless it keeps happening.
                log.info("re-listing %s: %s", self._kind.plural, why)
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF, max(0.5, 2 * backoff))
            except KuberthError as error:
                backoff = min(MAX_BACKOFF, max(1.0, 2 * backoff))
                log.warning(
                    "the %s copy is stale (retrying in %.0f s): %s",
                    self._kind.plural,
                    backoff,
                    error.message,
                )
                self._stop.wait(backoff)
            except Exception:  # a bug must not end the thread and freeze the copy silently
                backoff = min(MAX_BACKOFF, max(1.0, 2 * backoff))
                log.exception("the %s informer failed; retrying", self._kind.plural)
                self._stop.wait(backoff)

    def _list(self) -> str:
        """Read every object, a page at a time, and replace the copy; returns the version."""
        fresh: dict[str, dict[str, T]] = {}
        query: dict[str, str | int] = {"labelSelector": self._selector, "limit": self._page_size}
        while True:
            page = self._api.request(
                "GET", self._kind.path(), query=query, what=f"every {self._kind.plural}"
            )
            for item in page.get("items") or []:
                namespace, name = _key(item)
                fresh.setdefault(namespace, {})[name] = self._project(item)
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                break
            query["continue"] = token
        with self._lock:
            self._items = fresh
            self._index = {}
            for namespace, names in fresh.items():
                for name, value in names.items():
                    self._add_keys(namespace, name, value)
        self.lists += 1
        self._synced.set()
        return str(metadata.get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        """Apply events from ``version`` until the server ends the watch; returns the last version.

        Raises:
            _WatchEndedError: the server cannot go on from this version; list again.
        """
        query: dict[str, str | int | bool] = {
            "labelSelector": self._selector,
            "resourceVersion": version,
            "allowWatchBookmarks": True,
        }
        try:
            events = self._api.watch(
                self._kind.path(),
                query=query,
                timeout=self._watch_seconds,
                what=f"every {self._kind.plural}",
            )
            for event in events:
                if self._stop.is_set():
                    break
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise _WatchEndedError(str(obj.get("message") or obj.get("code")))
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                namespace, name = _key(obj)
                if kind == "DELETED":
                    self._forget(namespace, name)
                else:
                    value = self._project(obj)
                    with self._lock:
                        self._drop_keys(namespace, name)
                        self._items.setdefault(namespace, {})[name] = value
                        self._add_keys(namespace, name, value)
        except KubernetesUnavailableError:
            raise
        except KuberthError as error:  # 410 Gone at the start of the watch, among others
            raise _WatchEndedError(error.message) from error
        return version

    def _add_keys(self, namespace: str, name: str, value: T) -> None:
        if self._keys is not None:
            for key in self._keys(value):
                self._index.setdefault(key, set()).add((namespace, name))

    def _drop_keys(self, namespace: str, name: str) -> None:
        """Take the stored value's keys out of the index (the caller holds the lock)."""
        old = self._items.get(namespace, {}).get(name)
        if self._keys is None or old is None:
            return
        for key in self._keys(old):
            holders = self._index.get(key)
            if holders is not None:
                holders.discard((namespace, name))
                if not holders:
                    del self._index[key]

    def _forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._drop_keys(namespace, name)
            names = self._items.get(namespace)
            if names is not None:
                names.pop(name, None)
                if not names:
                    del self._items[namespace]  # no empty entries pile up


def _key(obj: JSON) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
