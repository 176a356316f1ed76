"""Why a Deployment's pods do not run, in words a tenant understands (pure functions).

Kubernetes says it in several places: the Deployment's own conditions (a ReplicaSet that cannot
create pods copies its ``ReplicaFailure`` there: Pod Security, quota), each pod's conditions
(unschedulable) and container states (image pulls, crash loops, bad container configs), and
events (the pull error behind a back-off, a failing readiness probe, a ReplicaSet's FailedCreate).
:func:`problems` reads them all and says each once, with the pods it concerns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

#: Kubelet's waiting reasons that mean the image could not be had.
IMAGE_PULL = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
    }
)
#: Waiting reasons that mean the container could not even be created or started.
CANNOT_CREATE = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)


@dataclass
class Problem:
    """One reason the pods do not run: a short code, a sentence, and the pods it concerns."""

    reason: str
    message: str
    pods: list[str] = field(default_factory=list)

    def as_json(self) -> JSON:
        return {"reason": self.reason, "message": self.message, "pods": sorted(self.pods)}


def healthy(deployment: JSON) -> bool:
    """Every desired pod is updated, ready and available, and no ReplicaSet failed to make one:
    then there is nothing to explain (and nothing more to read)."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    desired = spec.get("replicas", 1)
    if any(_failure(c) for c in status.get("conditions") or []):
        return False
    return (
        all(
            status.get(key, 0) >= desired
            for key in ("updatedReplicas", "readyReplicas", "availableReplicas")
        )
        and status.get("replicas", 0) == desired
    )


def _failure(condition: JSON) -> bool:
    return condition.get("type") == "ReplicaFailure" and condition.get("status") == "True"


def failed_create(message: str) -> tuple[str, str]:
    """A ReplicaSet's FailedCreate message as (reason, sentence)."""
    detail = _after_forbidden(message)
    if "violates PodSecurity" in message:
        level = re.search(r'violates PodSecurity "([a-z]+)', message)
        rules = detail.split(": ", 1)[1] if ": " in detail else detail
        named = f' "{level.group(1)}"' if level else ""
        return (
            "PodSecurity",
            f"Kubernetes refused to create the pods: they break the namespace's{named} Pod "
            f"Security rules: {rules}",
        )
    if "exceeded quota" in message or "must specify" in message:
        return (
            "QuotaExceeded",
            f"Kubernetes refused to create the pods: the namespace's quota has no room for "
            f"them ({detail})",
        )
    return "FailedCreate", f"Kubernetes could not create the pods: {detail}"


def _after_forbidden(message: str) -> str:
    """The part of 'pods "x" is forbidden: <why>' that says why."""
    _, sep, rest = message.partition(" is forbidden: ")
    return rest if sep else message


def _image_of(pod: JSON, container: str) -> str:
    spec = pod.get("spec", {})
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if c.get("name") == container:
            return str(c.get("image", "?"))
    return "?"


def _pull_error(pod_events: list[JSON], image: str) -> str | None:
    """The newest pull failure of an event about the pod: the real error behind a back-off."""
    for event in pod_events:
        message = str(event.get("message") or "")
        if event.get("reason") == "Failed" and "pull" in message.lower() and image in message:
            return message
    return None


def _strip_image_prefix(message: str, image: str) -> str:
    """'Failed to pull image "x": <why>' -> '<why>': the sentence names the image already."""
    for prefix in (f'Failed to pull image "{image}": ', f'Back-off pulling image "{image}": '):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def container_problem(pod: JSON, status: JSON, pod_events: list[JSON]) -> tuple[str, str] | None:
    """What keeps one container from running, from its status (and the pod's events)."""
    name = status.get("name", "?")
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    message = str(waiting.get("message") or "")
    if reason in IMAGE_PULL:
        image = status.get("image") or _image_of(pod, name)
        why = _pull_error(pod_events, image) or message or reason
        return (
            "ImagePull",
            f"The node could not get the image {image} of container {name}: "
            f"{_strip_image_prefix(why, image)}",
        )
    if reason == "CrashLoopBackOff":
        last = (status.get("lastState") or {}).get("terminated") or {}
        code = last.get("exitCode")
        how = (
            "it ran out of memory (OOMKilled)"
            if last.get("reason") == "OOMKilled"
            else f"it exited with code {code}"
            if code is not None
            else "it keeps exiting"
        )
        restarts = status.get("restartCount", 0)
        return (
            "CrashLoop",
            f"Container {name} keeps crashing: {how}, and has been restarted {restarts} times; "
            "Kubernetes waits longer before each new start. Its previous logs "
            "(previous=true) say why.",
        )
    if reason in CANNOT_CREATE:
        if "runAsNonRoot" in message and "root" in message:
            return (
                "RunsAsRoot",
                f"Container {name} cannot start: its image runs as root, and the namespace "
                "only allows non-root containers (use an image with a non-root USER, or set "
                "securityContext.runAsUser to a non-zero id).",
            )
        return "CannotStart", f"Container {name} cannot start: {message or reason}"
    if "running" in state and not status.get("ready", False):
        for event in pod_events:
            text = str(event.get("message") or "")
            if event.get("reason") == "Unhealthy" and text.startswith("Readiness probe failed"):
                return (
                    "NotReady",
                    f"Container {name} is running but not ready: its readiness probe fails "
                    f"({text.removeprefix('Readiness probe failed:').strip() or 'no detail'}), "
                    "so it gets no traffic.",
                )
    return None


def _newest_first(events: list[JSON]) -> list[JSON]:
    def when(event: JSON) -> str:
        return str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("firstTimestamp")
            or ""
        )

    return sorted(events, key=when, reverse=True)


def problems(deployment: JSON, pods: list[JSON], events: list[JSON]) -> list[JSON]:
    """Why the Deployment's pods do not run, each problem once (with the pods it concerns).

    ``pods`` are the Deployment's pods and ``events`` the namespace's (or already the related
    ones); both raw Kubernetes JSON. Empty when nothing is wrong (or nothing is known yet).
    """
    found: dict[tuple[str, str], Problem] = {}

    def add(reason: str, message: str, pod: str | None = None) -> None:
        problem = found.setdefault((reason, message), Problem(reason, message))
        if pod and pod not in problem.pods:
            problem.pods.append(pod)

    events = _newest_first(events)
    name = deployment.get("metadata", {}).get("name", "")
    for condition in deployment.get("status", {}).get("conditions") or []:
        if _failure(condition):
            add(*failed_create(str(condition.get("message") or condition.get("reason") or "")))
    replica_set = re.compile(rf"^{re.escape(name)}-[a-z0-9]+$")
    if not found:  # the condition may lag its ReplicaSet's event
        for event in events:
            involved = event.get("involvedObject") or {}
            if (
                event.get("reason") == "FailedCreate"
                and involved.get("kind") == "ReplicaSet"
                and replica_set.match(str(involved.get("name", "")))
            ):
                add(*failed_create(str(event.get("message") or "")))
                break
    for pod in pods:
        pod_name = pod.get("metadata", {}).get("name", "")
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue  # on its way out: its problems are no longer the Deployment's
        pod_events = [
            e
            for e in events
            if (e.get("involvedObject") or {}).get("name") == pod_name
            and (e.get("involvedObject") or {}).get("kind", "Pod") == "Pod"
        ]
        status = pod.get("status", {})
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                add(
                    "Unschedulable",
                    f"No node can run the pod: {condition.get('message') or 'no reason given'}",
                    pod_name,
                )
        statuses = [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]
        for container in statuses:
            problem = container_problem(pod, container, pod_events)
            if problem:
                add(*problem, pod_name)
    return [p.as_json() for p in found.values()]
