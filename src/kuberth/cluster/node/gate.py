"""The node's firewall gate: no new connection to or from a pod before kube-router has given the
pod its firewall.

Why: kube-router v2.1.0 programs a pod's firewall in its first full sync after the pod has an
address and lets every connection through until then (cloudnativelabs/kube-router#873); CI once
saw Traefik served a page that the tenant's policy refuses it. Upstream's fix,
``--netpol-default-deny`` (pull request #2079), is in releases this machine cannot fetch. The gate
closes the window the same way: refuse by default, admit an address once its pod's chain is in.

How: in the node's ``mangle`` table, which netfilter runs before kube-router's ``filter`` chains
(and after kube-proxy's DNAT, so a Service's traffic is seen with the pod's address), a new
connection forwarded to or from the pod range, or from it to the node, goes through the chains
:data:`TO` and :data:`FROM`: a RETURN for each admitted address, then a DROP for the rest of the
range. This process rewrites both chains in one commit (``iptables-restore --noflush``) when the
admitted addresses change: those whose current pod has kube-router's jump rule. It watches the
node's pods and reads kube-router's rules when a pod changes, and again (backing off) while a
pod waits for its chain.

Not an ipset: kube-router saves every ipset of the node when its sync starts and restores them
all when it ends, so an address added in between would be lost; it restores only the ``filter``
table. Dropping (the ``mangle`` table cannot reject) makes a client's first attempt wait for its
retransmission. Connections the node itself opens (the kubelet's probes) are not gated, as
kube-router does not police them either.

Run as ``python -m kuberth.cluster.node.gate KUBECONFIG``, inside the node's namespaces.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kuberth.cluster.node.layout import NODE_NAME, POD_CIDR

if TYPE_CHECKING:
    from kubernetes.client import V1Pod

#: The gate's chains in the ``mangle`` table: new connections to pods, and from pods.
TO = "KUBERTH-GATE-TO"
FROM = "KUBERTH-GATE-FROM"
#: Marks the gate's drops, for the node's start and status to find.
COMMENT = "kuberth: no new connection to or from a pod before kube-router firewalls it"

#: Where the built-in chains send new connections into the gate's: forwarded to and from pods,
#: and from pods to the node itself (never from the node to pods: the kubelet's probes).
HOOKS = (("FORWARD", TO), ("FORWARD", FROM), ("INPUT", FROM))

#: kube-router's jump to a pod's chain: ``-A KUBE-ROUTER-FORWARD -d IP/32 ... --comment "rule
#: to jump traffic destined to POD name:NAME namespace: NAMESPACE to chain KUBE-POD-FW-..."``.
_JUMP = re.compile(
    r"^-A KUBE-ROUTER-FORWARD -d (?P<ip>[0-9.]+)/32 .*"
    r"destined to POD name:(?P<name>\S+) namespace: (?P<namespace>\S+) to chain "
)

#: How long to wait before reading kube-router's rules again while a pod waits for its chain:
#: the first retry, its growth, and the longest (a pod kube-router never firewalls, such as one
#: whose sandbox is gone, must not keep the gate reading rules ten times a second).
FIRST_RETRY = 0.1
RETRY_GROWTH = 1.25
LONGEST_RETRY = 5.0


def firewalled(rules: Iterable[str]) -> set[tuple[str, str, str]]:
    """The address, namespace and name of each pod kube-router's rules send traffic to the
    chain of, from ``iptables-save -t filter`` lines."""
    return {
        (match["ip"], match["namespace"], match["name"])
        for rule in rules
        if (match := _JUMP.match(rule))
    }


def admitted(
    pods: Mapping[str, tuple[str, str]], rules: Collection[tuple[str, str, str]]
) -> set[str]:
    """The addresses to admit: a current pod's, with a jump rule that names that same pod (an
    address a deleted pod's rule still holds is not its successor's firewall)."""
    return {ip for ip, (namespace, name) in pods.items() if (ip, namespace, name) in rules}


def chains(addresses: Iterable[str]) -> str:
    """``iptables-restore --noflush`` input that rewrites the gate's chains in one commit: a
    RETURN for each admitted address, then a DROP for the rest of the pod range."""
    lines = ["*mangle", f":{TO} - [0:0]", f":{FROM} - [0:0]"]
    for ip in sorted(addresses):
        lines += [f"-A {TO} -d {ip}/32 -j RETURN", f"-A {FROM} -s {ip}/32 -j RETURN"]
    lines += [
        f'-A {TO} -d {POD_CIDR} -m comment --comment "{COMMENT}" -j DROP',
        f'-A {FROM} -s {POD_CIDR} -m comment --comment "{COMMENT}" -j DROP',
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"


def hook_rules(action: str) -> list[list[str]]:
    """``iptables`` argument lists that check (``-C``) or insert first (``-I``) the hooks."""
    position = ["1"] if action == "-I" else []
    return [
        ["-t", "mangle", action, chain, *position, "-m", "conntrack", "--ctstate", "NEW",
         "-j", target]
        for chain, target in HOOKS
    ]  # fmt: skip


def closed(mangle: Iterable[str]) -> bool:
    """Whether ``iptables-save -t mangle`` lines hold the hooks and both chains' drops."""
    rules = set(mangle)
    hooks = {f"-A {chain} -m conntrack --ctstate NEW -j {target}" for chain, target in HOOKS}
    return hooks <= rules and sum(COMMENT in rule for rule in rules) == 2


@dataclass
class NodePods:
    """The node's pods that kube-router polices, by address, kept by a watch."""

    by_address: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: When the watch first saw each address, to report how long its pod waited for its chain.
    seen: dict[str, float] = field(default_factory=dict)
    changed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def replace(self, pods: Iterable[V1Pod]) -> None:
        with self.lock:
            self.by_address = {}
            for pod in pods:
                self._put(*_policed(pod))
        self.changed.set()

    def apply(self, kind: str, pod: V1Pod) -> None:
        key, ip = _policed(pod)
        with self.lock:
            self.by_address = {at: who for at, who in self.by_address.items() if who != key}
            if kind != "DELETED":
                self._put(key, ip)
        self.changed.set()

    def _put(self, key: tuple[str, str], ip: str | None) -> None:
        if ip:
            self.by_address[ip] = key
            self.seen.setdefault(ip, time.monotonic())

    def snapshot(self) -> tuple[dict[str, tuple[str, str]], dict[str, float]]:
        """The pods by address, and when each address was first seen."""
        with self.lock:
            self.seen = {ip: at for ip, at in self.seen.items() if ip in self.by_address}
            return dict(self.by_address), dict(self.seen)


def _policed(pod: V1Pod) -> tuple[tuple[str, str], str | None]:
    """The pod's namespace and name, and its address if kube-router polices it: on the pod
    network, with an address, not ended."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    key = (meta.namespace or "", meta.name or "") if meta else ("", "")
    if status is None or (spec and spec.host_network) or status.phase in ("Succeeded", "Failed"):
        return key, None
    return key, status.pod_ip


def watch_pods(kubeconfig: str, pods: NodePods) -> None:
    """List the node's pods, then follow their changes; list again when the watch ends (every
    five minutes), fails or its resource version has expired."""
    from kubernetes import client, config, watch
    from kubernetes.client.exceptions import ApiException

    api = client.CoreV1Api(config.new_client_from_config(kubeconfig))
    selector = f"spec.nodeName={NODE_NAME}"
    while True:
        try:
            listed = api.list_pod_for_all_namespaces(field_selector=selector)
            pods.replace(listed.items)
            assert listed.metadata is not None
            stream = watch.Watch().stream(
                api.list_pod_for_all_namespaces,
                field_selector=selector,
                resource_version=listed.metadata.resource_version,
                timeout_seconds=300,
            )
            for event in stream:
                pods.apply(event["type"], event["object"])
        except Exception as error:  # whatever ended the watch (the connection, the API): list again
            if isinstance(error, ApiException) and error.status == 410:
                continue  # the resource version expired: at once
            print(f"gate: watching the node's pods failed ({error!r}); listing again", flush=True)
            time.sleep(1.0)


class Gate:
    """The gate's chains, in step with the node's pods and kube-router's rules."""

    def __init__(self, pods: NodePods) -> None:
        self.pods = pods
        self.open: set[str] | None = None  # unknown until the first sync writes the chains

    def sync(self) -> bool:
        """Admit the addresses whose pods kube-router has firewalled and let go of the others;
        returns whether a pod still waits for its chain."""
        pods, seen = self.pods.snapshot()
        wanted = admitted(pods, firewalled(_filter_rules()))
        if wanted != self.open:
            _run(["iptables-restore", "--noflush"], chains(wanted))
            added, self.open = wanted - (self.open or set()), wanted
            now = time.monotonic()
            for ip in sorted(added):
                namespace, name = pods[ip]
                waited = now - seen.get(ip, now)
                print(f"gate: {ip} ({namespace}/{name}) admitted {waited:.2f}s after its "
                      "address was seen", flush=True)  # fmt: skip
        return bool(set(pods) - wanted)


def run(kubeconfig: str) -> None:
    """Set the gate up (its chains filled before the hooks go in, so no running pod is cut
    off), then keep it in step with the node's pods."""
    pods = NodePods()
    threading.Thread(target=watch_pods, args=(kubeconfig, pods), daemon=True).start()
    pods.changed.wait()
    gate = Gate(pods)
    waiting = gate.sync()
    for check, insert in zip(hook_rules("-C"), hook_rules("-I"), strict=True):
        if subprocess.run(["iptables", *check], capture_output=True, check=False).returncode:
            _run(["iptables", *insert])
    print(f"gate: {POD_CIDR} closed but to {len(gate.open or ())} firewalled pods", flush=True)
    retry = FIRST_RETRY
    while True:
        if pods.changed.wait(retry if waiting else None):
            retry = FIRST_RETRY
        else:
            retry = min(retry * RETRY_GROWTH, LONGEST_RETRY)
        pods.changed.clear()
        try:
            waiting = gate.sync()
        except subprocess.CalledProcessError as error:  # iptables, once: try again
            print(f"gate: {error} ({error.stderr.strip()}); trying again", flush=True)
            waiting = True


def _filter_rules() -> list[str]:
    result = subprocess.run(
        ["iptables-save", "-t", "filter"], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def _run(argv: list[str], stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, capture_output=True, text=True, check=True)


def main(argv: list[str]) -> None:
    (kubeconfig,) = argv
    run(kubeconfig)  # until SIGTERM, whose default action ends it (the chains stay: closed)


if __name__ == "__main__":
    main(sys.argv[1:])
