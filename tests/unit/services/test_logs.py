"""Log parameters, prefixes and which containers are read: pure functions, no cluster."""

from __future__ import annotations

from typing import Any

import pytest

from kuberth.exceptions import ConflictError, InvalidInputError, NotFoundError
from kuberth.services.logs import (
    LIMIT_BYTES,
    LogRequest,
    LogSource,
    choose_sources,
    parse_since,
    prefix,
    prefixed,
)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("300", 300),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        (" 7 ", 7),
        ("007", 7),
        ("999999999h", 999999999 * 3600),
    ],
)
def test_since_takes_seconds_or_a_duration(value: str | None, seconds: int | None) -> None:
    assert parse_since(value) == seconds


@pytest.mark.parametrize("value", ["0", "00", "0h", "-5", "5d", "1.5h", "abc", "5 m", "1234567890"])
def test_a_bad_since_names_the_field(value: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_since(value)
    assert raised.value.field == "since"
    assert "since" in raised.value.message


def test_lines_are_prefixed_as_kubectl_logs_prefix_does() -> None:
    assert prefix("web-7d4-x2", "web") == "[pod/web-7d4-x2/web] "
    text = "one\ntwo\r\n\nlast without newline"
    assert prefixed(text, "p", "c") == (
        "[pod/p/c] one\n[pod/p/c] two\n[pod/p/c] \n[pod/p/c] last without newline\n"
    )
    assert prefixed("", "p", "c") == ""
    assert prefixed("only\n", "p", "c") == "[pod/p/c] only\n"
    assert LogSource("p", "c").prefix == "[pod/p/c] "


def test_the_kubernetes_query_carries_every_parameter() -> None:
    asked = LogRequest(tail=5, since=60, previous=True)
    assert asked.query("web") == {
        "container": "web",
        "tailLines": 5,
        "sinceSeconds": 60,
        "previous": True,
        "limitBytes": LIMIT_BYTES,
    }
    # A follow is bounded in time, not in bytes: limitBytes would cut it short.
    assert asked.query("web", follow=True) == {
        "container": "web",
        "tailLines": 5,
        "sinceSeconds": 60,
        "previous": True,
    }
    assert LogRequest().query("c") == {
        "container": "c",
        "tailLines": 100,
        "limitBytes": LIMIT_BYTES,
    }


TEMPLATE = {
    "spec": {
        "initContainers": [{"name": "setup"}],
        "containers": [{"name": "web"}, {"name": "sidecar"}],
    }
}


def pod(name: str, created: str, **states: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": c, **s} for c, s in states.items()],
        },
    }


RUNNING: dict[str, Any] = {"state": {"running": {}}}
WAITING: dict[str, Any] = {"state": {"waiting": {"reason": "ContainerCreating"}}}
CRASHED: dict[str, Any] = {
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
    "lastState": {"terminated": {"exitCode": 3}},
    "restartCount": 2,
}


def test_every_container_of_every_pod_oldest_pod_first() -> None:
    pods = [
        pod("b", "2026-01-02T00:00:00Z", web=RUNNING, sidecar=RUNNING),
        pod("a", "2026-01-01T00:00:00Z", web=RUNNING, sidecar=RUNNING),
    ]
    sources = choose_sources(TEMPLATE, pods, LogRequest(), what="deployment d")
    assert [(s.pod, s.container) for s in sources] == [
        ("a", "web"),
        ("a", "sidecar"),
        ("b", "web"),
        ("b", "sidecar"),
    ]


def test_one_container_and_one_pod() -> None:
    pods = [pod("a", "1", web=RUNNING), pod("b", "2", web=RUNNING)]
    asked = LogRequest(container="web", pod="b")
    assert choose_sources(TEMPLATE, pods, asked, what="deployment d") == [LogSource("b", "web")]
    # An init container is read only when asked for by name.
    init = pod("a", "1", setup={"state": {"terminated": {"exitCode": 0}}})
    init["status"]["initContainerStatuses"] = init["status"].pop("containerStatuses")
    sources = choose_sources(TEMPLATE, [init], LogRequest(container="setup"), what="d")
    assert sources == [LogSource("a", "setup")]


def test_an_unknown_container_or_pod_names_the_field() -> None:
    pods = [pod("a", "1", web=RUNNING)]
    with pytest.raises(NotFoundError) as raised:
        choose_sources(TEMPLATE, pods, LogRequest(container="nope"), what="deployment d")
    assert raised.value.field == "container"
    assert "web, sidecar, setup" in raised.value.message
    with pytest.raises(NotFoundError) as missing:
        choose_sources(TEMPLATE, pods, LogRequest(pod="other"), what="deployment d")
    assert missing.value.field == "pod"


def test_a_container_not_started_yet_is_a_conflict_saying_so() -> None:
    pods = [pod("a", "1", web=WAITING, sidecar=WAITING)]
    with pytest.raises(ConflictError) as raised:
        choose_sources(TEMPLATE, pods, LogRequest(), what="deployment d")
    assert raised.value.field == "container"
    assert "container web of pod a has not started yet (ContainerCreating)" in raised.value.message
    assert "1 more" in raised.value.message
    # A pod with no container status at all (still Pending) has not started either.
    pending = {"metadata": {"name": "p"}, "status": {"phase": "Pending"}}
    with pytest.raises(ConflictError, match=r"has not started yet \(the pod is Pending"):
        choose_sources(TEMPLATE, [pending], LogRequest(container="web"), what="d")


def test_the_started_containers_are_read_the_waiting_ones_left_out() -> None:
    pods = [pod("a", "1", web=RUNNING, sidecar=WAITING), pod("b", "2", web=CRASHED)]
    sources = choose_sources(TEMPLATE, pods, LogRequest(container="web"), what="d")
    # A crash-looping container waiting to restart still has its last run's log.
    assert sources == [LogSource("a", "web"), LogSource("b", "web")]
    assert choose_sources(TEMPLATE, pods, LogRequest(), what="d") == [
        LogSource("a", "web"),
        LogSource("b", "web"),
    ]


def test_previous_needs_a_previous_instance() -> None:
    pods = [pod("a", "1", web=RUNNING), pod("b", "2", web=CRASHED)]
    asked = LogRequest(container="web", previous=True)
    assert choose_sources(TEMPLATE, pods, asked, what="d") == [LogSource("b", "web")]
    with pytest.raises(ConflictError) as raised:
        choose_sources(TEMPLATE, pods[:1], asked, what="d")
    assert raised.value.field == "previous"
    assert "has no previous instance" in raised.value.message


def test_no_pods_is_nothing_to_read() -> None:
    assert choose_sources(TEMPLATE, [], LogRequest(), what="d") == []
