"""Why pods do not start, in plain words: Kubernetes' own messages turned into sentences."""

from __future__ import annotations

from typing import Any

from kuberth.services.problems import failed_create, healthy, problems

JSON = dict[str, Any]

PSA = (
    'pods "web-5d8f7c9b4-x7k2p" is forbidden: violates PodSecurity "restricted:latest": '
    'privileged (container "web" must not set securityContext.privileged=true), '
    'runAsNonRoot != true (pod or container "web" must set securityContext.runAsNonRoot=true)'
)
QUOTA = (
    'pods "web-5d8f7c9b4-q2w3e" is forbidden: exceeded quota: compute, requested: '
    "limits.cpu=2, used: limits.cpu=2, limited: limits.cpu=2"
)


def deployment(name: str = "web", *, desired: int = 1, ready: int = 0, **status: Any) -> JSON:
    return {
        "metadata": {"name": name, "namespace": "alice"},
        "spec": {"replicas": desired},
        "status": {
            "replicas": ready,
            "updatedReplicas": ready,
            "readyReplicas": ready,
            "availableReplicas": ready,
            **status,
        },
    }


def pod(name: str, *statuses: JSON, conditions: list[JSON] | None = None) -> JSON:
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": s["name"], "image": f"img/{s['name']}:1"} for s in statuses]
        },
        "status": {"containerStatuses": list(statuses), "conditions": conditions or []},
    }


def event(
    reason: str, message: str, name: str, kind: str = "Pod", at: str = "2026-12-01T10:00:00Z"
) -> JSON:
    return {
        "reason": reason,
        "message": message,
        "involvedObject": {"kind": kind, "name": name},
        "lastTimestamp": at,
    }


def test_a_healthy_deployment_has_nothing_to_explain() -> None:
    assert healthy(deployment(desired=2, ready=2))
    assert not healthy(deployment(desired=2, ready=1))
    failing = deployment(
        desired=0, ready=0, conditions=[{"type": "ReplicaFailure", "status": "True"}]
    )
    assert not healthy(failing)
    assert problems(deployment(desired=2, ready=2), [], []) == []


def test_pod_security_refusal_from_the_deployment_condition() -> None:
    condition = {
        "type": "ReplicaFailure",
        "status": "True",
        "reason": "FailedCreate",
        "message": PSA,
    }
    [problem] = problems(deployment(conditions=[condition]), [], [])
    assert problem["reason"] == "PodSecurity"
    assert problem["message"] == (
        'Kubernetes refused to create the pods: they break the namespace\'s "restricted" Pod '
        'Security rules: privileged (container "web" must not set '
        'securityContext.privileged=true), runAsNonRoot != true (pod or container "web" must '
        "set securityContext.runAsNonRoot=true)"
    )
    assert problem["pods"] == []


def test_quota_refusal_from_a_replica_set_event_when_no_pod_exists() -> None:
    events = [
        event("FailedCreate", QUOTA, "web-5d8f7c9b4", kind="ReplicaSet"),
        # Another Deployment's ReplicaSet (web-api) is not this one's.
        event("FailedCreate", PSA, "web-api-7f9c6d5b8", kind="ReplicaSet"),
    ]
    [problem] = problems(deployment(), [], events)
    assert problem["reason"] == "QuotaExceeded"
    assert problem["message"] == (
        "Kubernetes refused to create the pods: the namespace's quota has no room for them "
        "(exceeded quota: compute, requested: limits.cpu=2, used: limits.cpu=2, limited: "
        "limits.cpu=2)"
    )
    assert failed_create("something else broke")[0] == "FailedCreate"


def test_an_image_that_cannot_be_pulled_names_it_and_says_why_once_for_all_pods() -> None:
    waiting = {
        "name": "web",
        "image": "example.invalid/nope:1",
        "ready": False,
        "state": {
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": 'Back-off pulling image "example.invalid/nope:1"',
            }
        },
    }
    why = (
        'Failed to pull image "example.invalid/nope:1": failed to resolve reference '
        '"example.invalid/nope:1": dial tcp: lookup example.invalid: no such host'
    )
    pods = [pod("web-1", waiting), pod("web-2", waiting)]
    events = [event("Failed", why, "web-1"), event("Failed", why, "web-2")]
    [problem] = problems(deployment(desired=2), pods, events)
    assert problem == {
        "reason": "ImagePull",
        "message": "The node could not get the image example.invalid/nope:1 of container web: "
        'failed to resolve reference "example.invalid/nope:1": dial tcp: lookup '
        "example.invalid: no such host",
        "pods": ["web-1", "web-2"],
    }
    # Without the event, the container's own message is all there is.
    [alone] = problems(deployment(), [pod("web-1", waiting)], [])
    assert alone["message"] == (
        "The node could not get the image example.invalid/nope:1 of container web: "
        'Back-off pulling image "example.invalid/nope:1"'
    )


def test_a_crash_loop_gives_the_exit_code() -> None:
    crashing = {
        "name": "worker",
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
    }
    [problem] = problems(deployment(), [pod("w-1", crashing)], [])
    assert problem["reason"] == "CrashLoop"
    assert problem["message"].startswith(
        "Container worker keeps crashing: it exited with code 3, and has been restarted 4 times"
    )
    crashing["lastState"] = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    [oom] = problems(deployment(), [pod("w-1", crashing)], [])
    assert "ran out of memory (OOMKilled)" in oom["message"]


def test_a_root_image_under_run_as_non_root() -> None:
    status = {
        "name": "web",
        "state": {
            "waiting": {
                "reason": "CreateContainerConfigError",
                "message": "container has runAsNonRoot and image will run as root "
                '(pod: "web-1_alice(…)", container: web)',
            }
        },
    }
    [problem] = problems(deployment(), [pod("web-1", status)], [])
    assert problem["reason"] == "RunsAsRoot"
    assert "its image runs as root" in problem["message"]
    status["state"]["waiting"]["message"] = 'secret "db" not found'
    [other] = problems(deployment(), [pod("web-1", status)], [])
    assert other == {
        "reason": "CannotStart",
        "message": 'Container web cannot start: secret "db" not found',
        "pods": ["web-1"],
    }


def test_unschedulable_and_a_failing_readiness_probe() -> None:
    unscheduled = pod(
        "web-1",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/2 nodes are available: 2 Insufficient memory.",
            }
        ],
    )
    running = {"name": "web", "ready": False, "state": {"running": {}}}
    unready = pod("web-2", running)
    events = [
        event(
            "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 500", "web-2"
        )
    ]
    found = problems(deployment(desired=2), [unscheduled, unready], events)
    assert found == [
        {
            "reason": "Unschedulable",
            "message": "No node can run the pod: 0/2 nodes are available: 2 Insufficient memory.",
            "pods": ["web-1"],
        },
        {
            "reason": "NotReady",
            "message": "Container web is running but not ready: its readiness probe fails "
            "(HTTP probe failed with statuscode: 500), so it gets no traffic.",
            "pods": ["web-2"],
        },
    ]
    # Running and not ready yet, with no failed probe: nothing to say (it is starting).
    assert problems(deployment(), [unready], []) == []
