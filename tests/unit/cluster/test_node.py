"""The real node's pure parts: prerequisites, addressing and configuration files."""

from __future__ import annotations

from pathlib import Path

import yaml

from kuberth.cluster.node import configs, prerequisites
from kuberth.cluster.node.layout import NodeLayout, node_id
from kuberth.cluster.node.namespaces import free_subnet

MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def test_the_fallback_message_says_why_once_and_what_it_falls_back_to() -> None:
    message = prerequisites.explain(["not running as root", "missing commands containerd"])
    assert message.count("no real node") == 1
    assert "not running as root; missing commands containerd" in message
    assert "kwok node only" in message
    assert "make system-deps" in message


def test_capabilities_and_cgroups_are_read_from_proc() -> None:
    assert prerequisites.effective_capabilities("Name:\tx\nCapEff:\t0000000000200000\n") == 1 << 21
    assert prerequisites.cgroup_v1_hierarchies(MOUNTS) == {
        "cpu": Path("/sys/fs/cgroup/cpu"),
        "memory": Path("/sys/fs/cgroup/memory"),
        "name=systemd": Path("/sys/fs/cgroup/systemd"),
    }
    assert Path("/sys/fs/cgroup/unified") in prerequisites.cgroup_mounts(MOUNTS)


def test_each_node_gets_a_free_slash_24_and_names_of_its_own(tmp_path: Path) -> None:
    used = "4: kb-1 inet 100.72.0.1/24 scope global\n5: kb-2 inet 100.72.1.1/24 scope global\n"
    assert free_subnet(used) == 2
    layout = NodeLayout(tmp_path, node_id(tmp_path), 2)
    assert (layout.host_ip, layout.node_ip) == ("100.72.2.1", "100.72.2.2")
    assert len(layout.host_veth) <= 15
    assert node_id(tmp_path) != node_id(tmp_path / "other")


def test_configs_keep_everything_under_the_nodes_directory(tmp_path: Path) -> None:
    layout = NodeLayout(tmp_path, "abcd1234", 0)
    toml = configs.containerd_config(
        layout, sandbox_image="kuberth.local/pause:1", runc="/usr/sbin/runc", cni_bin=Path("/x")
    )
    assert "restrict_oom_score_adj = true" in toml
    assert "/var/lib/containerd" not in toml
    assert str(tmp_path) in toml
    kubelet = configs.kubelet_config(layout, ca_file=tmp_path / "ca.crt")
    assert kubelet["failCgroupV1"] is False
    assert kubelet["protectKernelDefaults"] is True
    assert kubelet["cgroupRoot"] == "/kuberth-abcd1234"
    proxy = configs.kube_proxy_config(layout, kubeconfig=tmp_path / "k")
    assert proxy["conntrack"]["maxPerCore"] == 0
    script = configs.namespace_script(layout, {"kernel/panic": tmp_path / "panic"})
    assert f"mount -n --bind {tmp_path / 'panic'} /proc/sys/kernel/panic" in script
    assert "mount -n -t tmpfs -o mode=755 tmpfs /var/lib\n" in script
    assert "mkdir" not in script.replace(f"mkdir -p {tmp_path}", ""), "nothing made on the host"
    assert yaml.safe_load(yaml.safe_dump(kubelet)) == kubelet


def test_the_nodes_sockets_fit_the_unix_limit_however_deep_its_directory(tmp_path: Path) -> None:
    """CI's pytest-103/... directory pushed the kubelet's pod-resources socket past 108 bytes."""
    layout = NodeLayout(tmp_path.joinpath(*["a-long-directory-name"] * 8), "abcd1234", 0)
    flags = dict(flag.removeprefix("--").split("=", 1) for flag in configs.kubelet_flags(layout))
    private = configs.PRIVATE_DIRECTORIES
    for socket_dir in (Path(flags["root-dir"]) / "pod-resources", layout.containerd_socket.parent):
        assert any(socket_dir.is_relative_to(directory) for directory in private)
        assert len(str(socket_dir / "kubelet-1234567890.sock")) < 108


def test_kube_router_only_enforces_policies_and_only_reads(tmp_path: Path) -> None:
    flags = configs.kube_router_flags(kubeconfig=tmp_path / "kube-router.kubeconfig")
    for flag in ("--run-router=false", "--run-service-proxy=false", "--run-loadbalancer=false"):
        assert flag in flags
    assert "--run-firewall=true" in flags
    assert "--service-cluster-ip-range=10.96.0.0/16" in flags
    role, binding = configs.kube_router_rbac()
    for rule in role["rules"]:
        assert rule["verbs"] == ["get", "list", "watch"], rule
    readable = {r for rule in role["rules"] for r in rule["resources"]}
    assert "networkpolicies" in readable
    assert not readable & {"secrets", "configmaps", "leases"}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kuberth:kube-router"}
    ]
