"""The real node's Ingress controller: what is deployed, with which rights, how it is reached."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from kuberth.cluster.node import ingress
from kuberth.cluster.node.layout import NODE_SELECTOR, TOLERATION, NodeLayout
from kuberth.settings import Settings


def by_kind(image: str = "kuberth.local/traefik:v3.6.12") -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in ingress.manifests(image)}


def test_traefik_runs_on_the_real_node_within_pod_security_restricted() -> None:
    objects = by_kind()
    namespace = objects["Namespace"]["metadata"]
    assert namespace["name"] == ingress.NAMESPACE
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == NODE_SELECTOR
    assert pod["tolerations"] == [TOLERATION]
    assert pod["serviceAccountName"] == ingress.NAME
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["image"] == "kuberth.local/traefik:v3.6.12"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert all("hostPort" not in port for port in container["ports"])
    assert all(port["containerPort"] > 1024 for port in container["ports"])
    assert "hostNetwork" not in pod


def test_traefik_serves_its_own_class_only_and_keeps_ping_off_the_apps_entrypoint() -> None:
    objects = by_kind()
    assert objects["IngressClass"]["metadata"]["name"] == ingress.INGRESS_CLASS
    args = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--providers.kubernetesIngress.ingressClass={ingress.INGRESS_CLASS}" in args
    assert f"--entryPoints.web.address=:{ingress.WEB_PORT}" in args
    assert "--ping.entryPoint=traefik" in args
    service = objects["Service"]["spec"]
    assert service["type"] == "NodePort"
    assert service["ports"][0]["nodePort"] == ingress.NODE_PORT


def test_traefiks_rights_are_read_only_and_only_what_its_provider_watches() -> None:
    objects = by_kind()
    rules = objects["ClusterRole"]["rules"]
    verbs = {verb for rule in rules for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    resources = {r for rule in rules for r in rule["resources"]}
    assert resources == {
        "services",
        "secrets",
        "nodes",
        "endpointslices",
        "ingresses",
        "ingressclasses",
    }
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": ingress.NAME, "namespace": ingress.NAMESPACE}
    ]


def test_the_apps_port_falls_back_to_a_free_one_when_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        chosen = ingress.choose_apps_port(port)
        assert chosen != port
        assert chosen > 0
    assert ingress.choose_apps_port(0) > 0


def test_the_forwarder_listens_on_loopback_and_targets_the_node_port(tmp_path: Path) -> None:
    layout = NodeLayout(tmp_path, "abcd1234", 3)
    command = ingress.forwarder_command(layout, 8080)
    assert command[-5:] == ["lo", "127.0.0.1", "8080", "100.72.3.2", str(ingress.NODE_PORT)]


def test_the_default_apps_port_is_the_settings_default() -> None:
    assert Settings.model_fields["cluster_apps_port"].default == ingress.DEFAULT_APPS_PORT
