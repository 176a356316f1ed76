"""What users want to know about an object, read from its raw JSON (pure functions)."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def _meta(obj: JSON) -> JSON:
    metadata = obj.get("metadata", {})
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "labels": metadata.get("labels") or {},
        "resource_version": metadata.get("resourceVersion"),
        "created_at": metadata.get("creationTimestamp"),
    }


def deployment(obj: JSON) -> JSON:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    containers = spec.get("template", {}).get("spec", {}).get("containers", [])
    return {
        **_meta(obj),
        "images": [c.get("image") for c in containers],
        "replicas": {
            "desired": spec.get("replicas", 1),
            "updated": status.get("updatedReplicas", 0),
            "ready": status.get("readyReplicas", 0),
            "available": status.get("availableReplicas", 0),
        },
        "conditions": status.get("conditions", []),
        "rolled_out": rollout_state(obj) == "complete",
    }


def rollout_state(obj: JSON) -> str:
    """complete | failed | progressing, as `kubectl rollout status` decides it."""
    metadata, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    if status.get("observedGeneration", 0) < metadata.get("generation", 0):
        return "progressing"
    for condition in status.get("conditions", []):
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return "failed"
    desired = spec.get("replicas", 1)
    if (
        status.get("updatedReplicas", 0) == desired
        and status.get("replicas", 0) == desired
        and status.get("availableReplicas", 0) == desired
    ):
        return "complete"
    return "progressing"


def pod(obj: JSON) -> JSON:
    status = obj.get("status", {})
    statuses = status.get("containerStatuses", [])
    return {
        "name": obj.get("metadata", {}).get("name"),
        "phase": status.get("phase"),
        "ready": bool(statuses) and all(c.get("ready") for c in statuses),
        "restarts": sum(c.get("restartCount", 0) for c in statuses),
        "node": obj.get("spec", {}).get("nodeName"),
        "ip": status.get("podIP"),
    }


def event(obj: JSON) -> JSON:
    involved = obj.get("involvedObject", {})
    return {
        "type": obj.get("type"),
        "reason": obj.get("reason"),
        "message": obj.get("message"),
        "object": f"{involved.get('kind', '')}/{involved.get('name', '')}",
        "count": obj.get("count", 1),
        "last_seen": obj.get("lastTimestamp") or obj.get("eventTime") or obj.get("firstTimestamp"),
    }


def service(obj: JSON, slices: list[JSON] | None = None) -> JSON:
    spec = obj.get("spec", {})
    result = {
        **_meta(obj),
        "type": spec.get("type", "ClusterIP"),
        "cluster_ip": spec.get("clusterIP"),
        "selector": spec.get("selector") or {},
        "ports": [
            {
                "name": p.get("name"),
                "port": p.get("port"),
                "target_port": p.get("targetPort"),
                "protocol": p.get("protocol", "TCP"),
            }
            for p in spec.get("ports", [])
        ],
        "endpoints": None,
    }
    if slices is not None:
        result["endpoints"] = sorted(
            address
            for piece in slices
            for endpoint in piece.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready", True)
            for address in endpoint.get("addresses", [])
        )
    return result


def ingress_hosts(obj: JSON) -> list[str]:
    return [rule["host"] for rule in obj.get("spec", {}).get("rules") or [] if rule.get("host")]


def ingress(obj: JSON) -> JSON:
    spec = obj.get("spec", {})
    backends = []
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths", []):
            backend = (path.get("backend") or {}).get("service") or {}
            port = backend.get("port") or {}
            backends.append(
                {
                    "host": rule.get("host"),
                    "path": path.get("path", "/"),
                    "service": backend.get("name"),
                    "port": port.get("number") or port.get("name"),
                }
            )
    return {
        **_meta(obj),
        "ingress_class": spec.get("ingressClassName"),
        "hosts": ingress_hosts(obj),
        "backends": backends,
        "tls": [
            {"hosts": t.get("hosts", []), "secret": t.get("secretName")}
            for t in spec.get("tls") or []
        ],
    }
