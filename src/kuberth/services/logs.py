"""The logs of a Deployment's (or an app's) pods, read as the tenant, each line prefixed with its
pod and container as ``kubectl logs --prefix`` does: ``[pod/<pod>/<container>] <line>``.

Which containers to read is decided here, from the pods' own status, before Kubernetes is asked:
a container that has not started yet is a clear 409, not the kubelet's 400 passed on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from kuberth.exceptions import (
    ConflictError,
    InvalidInputError,
    KuberthError,
    NotFoundError,
    UpstreamError,
)
from kuberth.services.builders import workloads as build
from kuberth.services.kinds import DEPLOYMENT
from kuberth.services.principal import Principal
from kuberth.services.workloads import WorkloadService
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.errors import KubernetesBadRequestError, KubernetesNotFoundError
from kuberth.storage.kubernetes.resources import PodStorage

log = logging.getLogger(__name__)

#: Lines per container when the caller does not say.
TAIL_DEFAULT = 100
#: The most lines per container one request may ask for (``kubectl logs --tail`` has no limit;
#: a page of Kuberth's is not the place for a whole day of logs).
TAIL_MAX = 10_000
#: Bytes per container one read may return at most (Kubernetes' ``limitBytes``), so a log of
#: very long lines cannot make one answer huge. Not for follows: they are bounded in time.
LIMIT_BYTES = 4 * 1024 * 1024
#: ``since``: a positive whole number of seconds, minutes or hours (also the API's schema).
SINCE_PATTERN = r"^0*[1-9][0-9]{0,8}[smh]?$"

_DURATION = re.compile(SINCE_PATTERN)
#: How the API server says a pod's node has no address to reach its kubelet at (kwok's nodes).
NO_KUBELET = "no preferred addresses found"
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_since(value: str | None) -> int | None:
    """``since`` as seconds: a number of seconds (``300``) or a duration (``30s``, ``5m``, ``2h``).

    Raises:
        InvalidInputError: naming ``since``.
    """
    if value is None or value == "":
        return None
    text = value.strip()
    if _DURATION.match(text) is None:
        raise InvalidInputError(
            f"since: {value!r} is not a positive number of seconds or a duration such as 30s, "
            "5m or 2h",
            field="since",
        )
    unit = text[-1] if text[-1] in _UNITS else ""
    return int(text.removesuffix(unit)) * _UNITS[unit]


def prefix(pod: str, container: str) -> str:
    """What starts each line, as ``kubectl logs --prefix`` writes it."""
    return f"[pod/{pod}/{container}] "


def prefixed(text: str, pod: str, container: str) -> str:
    """Every line of ``text`` with its prefix, each ending in a newline (a last line cut short
    by ``limitBytes`` included)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    start = prefix(pod, container)
    return "".join(f"{start}{line.removesuffix(chr(13))}\n" for line in lines)


@dataclass(frozen=True)
class LogRequest:
    """What a caller asked for; ``since`` in seconds."""

    tail: int = TAIL_DEFAULT
    since: int | None = None
    container: str | None = None
    pod: str | None = None
    previous: bool = False

    def query(self, container: str, *, follow: bool = False) -> dict[str, str | int | bool]:
        """Kubernetes' own query for one container's log."""
        query: dict[str, str | int | bool] = {"container": container, "tailLines": self.tail}
        if self.since is not None:
            query["sinceSeconds"] = self.since
        if self.previous:
            query["previous"] = True
        if not follow:
            query["limitBytes"] = LIMIT_BYTES
        return query


@dataclass(frozen=True)
class LogSource:
    """One container of one pod whose log is read."""

    pod: str
    container: str

    @property
    def prefix(self) -> str:
        return prefix(self.pod, self.container)


def _containers(pod_spec: JSON) -> tuple[list[str], list[str]]:
    """The names of the regular containers and of the init containers."""
    regular = [str(c.get("name")) for c in pod_spec.get("containers") or []]
    init = [str(c.get("name")) for c in pod_spec.get("initContainers") or []]
    return regular, init


def _status(pod: JSON, container: str) -> JSON:
    status = pod.get("status") or {}
    for entry in [
        *(status.get("containerStatuses") or []),
        *(status.get("initContainerStatuses") or []),
    ]:
        if entry.get("name") == container:
            return dict(entry)
    return {}


def not_readable(pod: JSON, container: str, *, previous: bool) -> str | None:
    """Why this container has no log to read (None when it has one)."""
    name = pod.get("metadata", {}).get("name", "?")
    status = _status(pod, container)
    last = (status.get("lastState") or {}).get("terminated")
    if previous:
        if last:
            return None
        return f"container {container} of pod {name} has no previous instance: it has not restarted"
    state = status.get("state") or {}
    if "running" in state or "terminated" in state or last:
        return None  # a container waiting to restart still has its last run's log
    waiting = state.get("waiting") or {}
    why = waiting.get("reason") or f"the pod is {pod.get('status', {}).get('phase') or 'Pending'}"
    detail = f": {waiting['message']}" if waiting.get("message") else ""
    return f"container {container} of pod {name} has not started yet ({why}{detail})"


def choose_sources(
    template: JSON, pods: list[JSON], request: LogRequest, *, what: str
) -> list[LogSource]:
    """The containers to read, in pod order, from the pod template and the pods' status.

    ``what`` names the Deployment or app in errors ("deployment web").

    Raises:
        NotFoundError: naming ``container``, which the pod template does not have, or ``pod``,
            which is not one of these pods.
        ConflictError: nothing to read yet (containers waiting to start, no previous instance).
    """
    regular, init = _containers(template.get("spec") or {})
    if request.container is not None and request.container not in regular + init:
        raise NotFoundError(
            f"container: {what} has no container {request.container!r}"
            f" (it has {', '.join(regular + init) or 'none'})",
            field="container",
        )
    if request.pod is not None:
        pods = [p for p in pods if p.get("metadata", {}).get("name") == request.pod]
        if not pods:
            raise NotFoundError(f"pod {request.pod} is not one of {what}'s pods", field="pod")
    containers = [request.container] if request.container is not None else regular
    pods = sorted(
        pods,
        key=lambda p: (
            p.get("metadata", {}).get("creationTimestamp") or "",
            p.get("metadata", {}).get("name", ""),
        ),
    )
    sources: list[LogSource] = []
    unreadable: list[str] = []
    for pod in pods:
        for container in containers:
            why = not_readable(pod, container, previous=request.previous)
            if why is None:
                sources.append(LogSource(pod["metadata"]["name"], container))
            else:
                unreadable.append(why)
    if not sources and unreadable:
        field = "previous" if request.previous else "container"
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        raise ConflictError(f"no log to read yet: {unreadable[0]}{more}", field=field)
    return sources


Emit = Callable[[str], Awaitable[None]]


class LogService:
    """Reads (and follows) the logs of a Deployment's pods as the caller."""

    def __init__(self, *, workloads: WorkloadService, pods: PodStorage) -> None:
        self._workloads = workloads
        self._pods = pods

    async def sources(
        self,
        principal: Principal,
        namespace: str,
        name: str,
        request: LogRequest,
        *,
        app: bool = False,
    ) -> list[LogSource]:
        """The containers to read for this Deployment (or app), read as the caller: the
        Deployment, then its pods (two Kubernetes calls).

        Raises:
            NotFoundError: no such Deployment (or app) of the caller's, or ``pod`` is not its.
            ConflictError: see :func:`choose_sources`.
        """
        what = f"app {name}" if app else f"deployment {name}"
        # Someone else's namespace: its own 404, the same whatever the name.
        await self._workloads.arequire_access(principal, namespace)
        try:
            deployment = await self._workloads.read(principal, DEPLOYMENT.plural, namespace, name)
        except NotFoundError as error:
            raise NotFoundError(f"{what} not found") from error
        labels = deployment.get("metadata", {}).get("labels") or {}
        if app and labels.get(build.KUBERTH_APP) != name:
            raise NotFoundError(f"{what} not found")
        spec = deployment.get("spec", {})
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        found = await self._pods.alist(
            namespace=namespace,
            label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            identity=principal.kubernetes_identity,
        )
        pods = found.get("items", [])
        return choose_sources(spec.get("template") or {}, pods, request, what=what)

    async def read(
        self, principal: Principal, namespace: str, sources: list[LogSource], request: LogRequest
    ) -> str:
        """The recent lines of every source, prefixed, one source after the other (a call each).

        A pod deleted meanwhile is skipped; a container that stopped being readable meanwhile
        (restarted into a wait) is a 409, as if it had been so from the start.
        """
        parts: list[str] = []
        for source in sources:
            try:
                text = await self._pods.read_log(
                    source.pod,
                    namespace=namespace,
                    query=request.query(source.container),
                    identity=principal.kubernetes_identity,
                )
            except KubernetesNotFoundError:
                continue
            except KubernetesBadRequestError as error:  # the kubelet's "is waiting to start"
                raise ConflictError(error.message, field="container") from error
            except UpstreamError as error:
                if NO_KUBELET in error.message:  # the pod's state, not a failure: a 409
                    raise ConflictError(
                        f"the log of {source.prefix.strip()} cannot be read: its node has no "
                        "address where the API server could ask its kubelet (a simulated node, "
                        f"such as kwok's, serves no logs); Kubernetes said: {error.message}",
                        field="pod",
                    ) from error
                raise error.prefixed(f"reading the log of {source.prefix.strip()}") from error
            parts.append(prefixed(text, source.pod, source.container))
        return "".join(parts)

    async def follow(
        self,
        principal: Principal,
        namespace: str,
        sources: list[LogSource],
        request: LogRequest,
        emit: Emit,
    ) -> None:
        """Stream every source's lines to ``emit`` as they come, interleaved, each prefixed; one
        upstream stream per source, all on the event loop. Returns when every stream has ended
        (their containers stopped); the caller bounds it in time and cancels it when its client
        goes away, which closes every upstream stream."""
        async with anyio.create_task_group() as group:
            for source in sources:
                group.start_soon(self._follow_one, principal, namespace, source, request, emit)

    async def _follow_one(
        self,
        principal: Principal,
        namespace: str,
        source: LogSource,
        request: LogRequest,
        emit: Emit,
    ) -> None:
        stream: Any = self._pods.follow_log(
            source.pod,
            namespace=namespace,
            query=request.query(source.container, follow=True),
            identity=principal.kubernetes_identity,
        )
        try:
            async with stream as lines:
                async for line in lines:
                    await emit(f"{source.prefix}{line.removesuffix(chr(13))}\n")
        except KuberthError as error:  # this source ends; the others go on
            log.info("following the log of %s/%s ended: %s", source.pod, source.container, error)
