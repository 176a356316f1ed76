"""Command lines and manifests of the local plane."""

from __future__ import annotations

import base64
from pathlib import Path

from kuberth.cluster.build import binaries_for
from kuberth.cluster.components import COMPONENTS, Layout, Ports, commands, fake_node, kubeconfig
from kuberth.cluster.versions import Versions

PORTS = Ports(2379, 2380, 6443, 10257, 10259, 10247)


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    return commands(binaries_for(tmp_path / "cache", Versions()), Layout(tmp_path / "state"), PORTS)


def test_every_component_has_a_command_in_start_order(tmp_path: Path) -> None:
    assert tuple(_commands(tmp_path)) == COMPONENTS


def test_api_server_authorizes_with_rbac_and_keeps_default_admission(tmp_path: Path) -> None:
    apiserver = _commands(tmp_path)["kube-apiserver"]
    assert "--authorization-mode=Node,RBAC" in apiserver
    assert "--secure-port=6443" in apiserver
    assert "--etcd-servers=http://127.0.0.1:2379" in apiserver
    assert not any(flag.startswith("--disable-admission") for flag in apiserver)
    # Enabled on top of the defaults: the plugins that pin tenants' pods to a pool of nodes.
    enabled = [flag for flag in apiserver if flag.startswith("--enable-admission")]
    assert enabled == ["--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction"]


def test_everything_listens_on_loopback_only(tmp_path: Path) -> None:
    for name, argv in _commands(tmp_path).items():
        flags = [a.split("=", 1) for a in argv if "=" in a]
        addresses = [v for f, v in flags if f.endswith("-address") or f.endswith("-urls")]
        assert addresses, name
        assert all("127.0.0.1" in address for address in addresses), name


def test_kubeconfig_embeds_its_credentials() -> None:
    config = kubeconfig(
        server="https://127.0.0.1:6443", ca_pem=b"ca", cert_pem=b"c", key_pem=b"k", user="u"
    )
    cluster = config["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == b"ca"
    assert base64.b64decode(config["users"][0]["user"]["client-key-data"]) == b"k"
    assert config["current-context"] == config["contexts"][0]["name"]


def test_fake_node_has_no_taint_and_room_for_pods() -> None:
    node = fake_node()
    assert "taints" not in node.get("spec", {})
    assert node["status"]["allocatable"]["pods"] == "110"
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_kwok_keeps_a_lease_for_its_node_as_a_kubelet_does(tmp_path: Path) -> None:
    """Its stages send the node's status only every 10-20 minutes: the lease is the heartbeat."""
    assert "--node-lease-duration-seconds=40" in _commands(tmp_path)["kwok"]
