"""The firewall gate's pure parts: reading kube-router's rules, which addresses to admit, the
node's pods as the watch leaves them, and the rules it puts in the mangle table."""

from __future__ import annotations

from kubernetes import client

from kuberth.cluster.node import configs, gate
from kuberth.cluster.node.layout import POD_CIDR

#: As `iptables-save -t filter` printed them on the real node (kube-router v2.1.0).
RULES = """\
-A KUBE-ROUTER-FORWARD -d 10.244.0.2/32 -m comment --comment "rule to jump traffic destined to \
POD name:traefik-5757466585-f9qsx namespace: kuberth-ingress to chain KUBE-POD-FW-T5QMYN3QKPIMNFDC\
" -j KUBE-POD-FW-T5QMYN3QKPIMNFDC
-A KUBE-ROUTER-FORWARD -d 10.244.0.2/32 -m physdev --physdev-is-bridged -m comment --comment "rule \
to jump traffic destined to POD name:traefik-5757466585-f9qsx namespace: kuberth-ingress to chain \
KUBE-POD-FW-T5QMYN3QKPIMNFDC" -j KUBE-POD-FW-T5QMYN3QKPIMNFDC
-A KUBE-ROUTER-FORWARD -s 10.244.0.7/32 -m comment --comment "rule to jump traffic from POD \
name:web-1 namespace: alice to chain KUBE-POD-FW-ABC" -j KUBE-POD-FW-ABC
-A KUBE-ROUTER-OUTPUT -d 10.244.0.9/32 -m comment --comment "rule to jump traffic destined to POD \
name:web-2 namespace: bob to chain KUBE-POD-FW-DEF" -j KUBE-POD-FW-DEF
-A KUBE-ROUTER-FORWARD -m comment --comment "rule to explicitly ACCEPT traffic that comply to \
network policies" -m mark --mark 0x20000/0x20000 -j ACCEPT
""".splitlines()


def pod(namespace: str, name: str, ip: str | None, phase: str = "Running") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(namespace=namespace, name=name),
        spec=client.V1PodSpec(containers=[]),
        status=client.V1PodStatus(pod_ip=ip, phase=phase),
    )


def test_only_jumps_of_traffic_to_a_pod_in_the_forward_chain_count_as_its_firewall() -> None:
    # Traffic from a pod (egress) and the OUTPUT chain's jumps are not the pod's ingress guard.
    assert gate.firewalled(RULES) == {("10.244.0.2", "kuberth-ingress", "traefik-5757466585-f9qsx")}


def test_an_address_is_admitted_only_for_the_pod_its_rule_names() -> None:
    rules = {("10.244.0.2", "alice", "web-old"), ("10.244.0.3", "bob", "web")}
    pods = {"10.244.0.2": ("carol", "web-new"), "10.244.0.3": ("bob", "web")}
    # 10.244.0.2 went from alice's deleted pod to carol's: alice's chain is not carol's guard.
    assert gate.admitted(pods, rules) == {"10.244.0.3"}
    # Once a sync has both (the deleted pod's rule not yet gone), carol's own rule admits her.
    assert gate.admitted(pods, rules | {("10.244.0.2", "carol", "web-new")}) == set(pods)
    assert gate.admitted({}, rules) == set()


def test_the_watch_keeps_the_pods_kube_router_polices_by_address() -> None:
    pods = gate.NodePods()
    pods.replace([pod("alice", "web", "10.244.0.5"), pod("alice", "pending", None)])
    assert pods.snapshot()[0] == {"10.244.0.5": ("alice", "web")}
    assert pods.changed.is_set()

    pods.apply("ADDED", pod("bob", "api", "10.244.0.6"))
    pods.apply("MODIFIED", pod("alice", "web", "10.244.0.8"))  # a new address, the old let go
    pods.apply("MODIFIED", pod("bob", "job", "10.244.0.9", phase="Succeeded"))
    by_address, seen = pods.snapshot()
    assert by_address == {"10.244.0.6": ("bob", "api"), "10.244.0.8": ("alice", "web")}
    assert set(seen) == set(by_address)

    pods.apply("DELETED", pod("bob", "api", "10.244.0.6"))
    assert pods.snapshot()[0] == {"10.244.0.8": ("alice", "web")}


def test_the_chains_return_admitted_addresses_and_drop_the_rest_of_the_pod_range() -> None:
    lines = gate.chains({"10.244.0.9", "10.244.0.3"}).splitlines()
    assert lines[:3] == ["*mangle", f":{gate.TO} - [0:0]", f":{gate.FROM} - [0:0]"]  # flushed
    assert lines[3:7] == [
        f"-A {gate.TO} -d 10.244.0.3/32 -j RETURN",
        f"-A {gate.FROM} -s 10.244.0.3/32 -j RETURN",
        f"-A {gate.TO} -d 10.244.0.9/32 -j RETURN",
        f"-A {gate.FROM} -s 10.244.0.9/32 -j RETURN",
    ]
    drops = lines[7:9]
    assert drops[0].startswith(f"-A {gate.TO} -d {POD_CIDR} ")
    assert drops[1].startswith(f"-A {gate.FROM} -s {POD_CIDR} ")
    assert all(rule.endswith("-j DROP") and gate.COMMENT in rule for rule in drops)
    assert lines[9:] == ["COMMIT"]  # one commit: never a moment with half the addresses
    assert gate.chains(()).splitlines()[3:5] == drops


def test_new_connections_to_and_from_pods_are_hooked_and_the_nodes_own_are_not() -> None:
    inserts = gate.hook_rules("-I")
    assert [(rule[3], rule[-1]) for rule in inserts] == [
        ("FORWARD", gate.TO),
        ("FORWARD", gate.FROM),
        ("INPUT", gate.FROM),  # a pod to the node; the node to a pod (OUTPUT) is not gated
    ]
    for rule in inserts:
        assert rule[:3] == ["-t", "mangle", "-I"]
        assert rule[4] == "1"  # before anything else in the chain
        assert rule[rule.index("--ctstate") + 1] == "NEW"  # replies and open flows pass
    checks = gate.hook_rules("-C")
    assert checks == [[*rule[:2], "-C", rule[3], *rule[5:]] for rule in inserts]


def test_closed_needs_every_hook_and_both_drops() -> None:
    # As iptables-save prints them.
    hooks = [f"-A {chain} -m conntrack --ctstate NEW -j {target}" for chain, target in gate.HOOKS]
    drops = gate.chains(["10.244.0.3"]).splitlines()[5:7]
    assert gate.closed([*hooks, *drops])
    assert not gate.closed(hooks)
    assert not gate.closed([*hooks[1:], *drops])


def test_the_gate_only_reads_pods() -> None:
    role, binding = configs.gate_rbac()
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    assert binding["subjects"][0]["name"] == configs.GATE_USER
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
