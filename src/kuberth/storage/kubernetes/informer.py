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

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from kuberth.exceptions import KubernetesUnavailableError, KuberthError
from kuberth.storage.kubernetes.api import JSON, KubernetesApi
from kuberth.storage.kubernetes.resources import Kind
from kuberth.storage.kubernetes.watching import WatchEndedError, list_every, watch_every

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Objects per list page: bounds the memory a (re-)list needs on its way in.
PAGE_SIZE = 500
#: How long one watch request lasts before it is resumed (the server ends it then).
WATCH_SECONDS = 240.0
#: How long :meth:`Informer.stop` waits for a copy's own thread to end.
STOP_SECONDS = 5.0
#: Longest wait between attempts while the API server cannot be reached.
MAX_BACKOFF = 30.0


class Informer(Generic[T]):
    """The objects of one kind that match a label selector, as ``project`` reduces them, kept
    current by a list-and-watch loop on an event loop; keyed by (namespace, name).

    The loop runs as a task on the loop :meth:`attach` names (the app's, from its lifespan, which
    cancels it at shutdown with :meth:`aclose`), else on an event loop in a thread of its own (a
    process without one: the CLI, tests). Either way it starts on first use, and the copy is read
    from any thread: the lock keeps each read whole while the loop changes it.
    """

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
        #: Event-loop waiters for the first list (see :meth:`arequire_synced`).
        self._waiters: list[asyncio.Future[None]] = []
        #: The event loop the task runs on when started (None: one of its own, in a thread).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None  # its own, when no loop was attached
        self._started = False
        self._stopped = False
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

    async def arequire_synced(self, timeout: float) -> None:
        """:meth:`require_synced` on the event loop: at once when the copy has its first list
        (every request after the first few), else awaited, holding no thread.

        Raises:
            KubernetesUnavailableError: no list has been stored within ``timeout`` seconds.
        """
        if self._synced.is_set():
            return
        self.start()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:  # the list is stored and its waiters woken under the same lock
            if self._synced.is_set():
                return
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise KubernetesUnavailableError(
                f"the copy of the {self._kind.plural} is not ready yet",
                retry_after=self._api.retry_after,
            ) from None
        finally:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _wake_waiters(self) -> None:
        """Wake every :meth:`arequire_synced` on its own loop (the copy's task may run on another
        loop, or in a thread of its own). The caller holds the lock."""
        for waiter in self._waiters:
            waiter.get_loop().call_soon_threadsafe(_done, waiter)
        self._waiters.clear()

    # -- running ----------------------------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the loop as a task on ``loop`` when started (the app's event loop, so no thread
        waits on the API server for the copy). Before :meth:`start`."""
        self._loop = loop

    def start(self) -> None:
        """Start the background list-and-watch (once; later calls do nothing). From any thread."""
        with self._lock:
            if self._started or self._stopped:
                return
            self._started = True
            loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._spawn, loop)
        else:
            self._thread = threading.Thread(
                target=self._run_alone, name=f"kuberth-informer-{self._kind.plural}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Cancel the task (from any thread); its watch is closed as it ends. A copy running in
        a thread of its own is waited for (a few seconds at most), so nothing it does outlives
        the caller's clients."""
        with self._lock:
            self._stopped = True
            task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # its loop already closed: nothing to cancel
                task.get_loop().call_soon_threadsafe(task.cancel)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_SECONDS)

    async def aclose(self) -> None:
        """Cancel the task and wait until it has ended, its watch closed (on the attached loop)."""
        self.stop()
        task = self._task
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait({task})

    def _spawn(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if not self._stopped:
                self._task = loop.create_task(self.run(), name=f"informer-{self._kind.plural}")

    def _run_alone(self) -> None:
        """The loop on an event loop of this thread's own, its connections closed at the end."""

        async def alone() -> None:
            with self._lock:
                if self._stopped:
                    return
                self._task = asyncio.current_task()
            try:
                await self.run()
            finally:
                await self._api.aclose()

        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(alone())

    async def run(self) -> None:
        """List, then watch from the list's version, until cancelled: a watch the server ends is
        resumed from the last version seen; one that ends in ERROR (410 Gone) or is cut means a
        new list that replaces the copy, after a pause that grows while attempts keep failing."""
        backoff = 0.0  # back to 0 once a watch runs its course
        while True:
            try:
                version = await self._list()
                while True:
                    version = await self._watch(version)
                    backoff = 0.0
            except WatchEndedError as why:
                # Usually a 410 after compaction: list again at once, unless it keeps happening.
                log.info("re-listing %s: %s", self._kind.plural, why)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF, max(0.5, 2 * backoff))
            except KuberthError as error:
                backoff = min(MAX_BACKOFF, max(1.0, 2 * backoff))
                log.warning(
                    "the %s copy is stale (retrying in %.0f s): %s",
                    self._kind.plural,
                    backoff,
                    error.message,
                )
                await asyncio.sleep(backoff)
            except Exception:  # a bug must not end the task and freeze the copy silently
                backoff = min(MAX_BACKOFF, max(1.0, 2 * backoff))
                log.exception("the %s informer failed; retrying", self._kind.plural)
                await asyncio.sleep(backoff)

    async def _list(self) -> str:
        """Read every object, a page at a time, and replace the copy; returns the version."""
        fresh: dict[str, dict[str, T]] = {}

        def keep(item: JSON) -> None:
            namespace, name = _key(item)
            fresh.setdefault(namespace, {})[name] = self._project(item)

        version = await list_every(
            self._api,
            self._kind,
            label_selector=self._selector,
            page_size=self._page_size,
            each=keep,
        )
        with self._lock:
            self._items = fresh
            self._index = {}
            for namespace, names in fresh.items():
                for name, value in names.items():
                    self._add_keys(namespace, name, value)
            self._synced.set()
            self._wake_waiters()
        self.lists += 1
        return version

    async def _watch(self, version: str) -> str:
        """Apply events from ``version`` until the server ends the watch; returns the last version.

        Raises:
            WatchEndedError: the server cannot go on from this version; list again.
            KubernetesUnavailableError: the watch was cut or could not be opened.
        """
        return await watch_every(
            self._api,
            self._kind,
            label_selector=self._selector,
            version=version,
            timeout=self._watch_seconds,
            each=self._apply,
        )

    def _apply(self, change: str, obj: JSON) -> None:
        namespace, name = _key(obj)
        if change == "DELETED":
            self._forget(namespace, name)
            return
        value = self._project(obj)
        with self._lock:
            self._drop_keys(namespace, name)
            self._items.setdefault(namespace, {})[name] = value
            self._add_keys(namespace, name, value)

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


def _done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a waiter that timed out is cancelled
        waiter.set_result(None)


def _key(obj: JSON) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
