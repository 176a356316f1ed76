"""A real node beside the kwok node: containerd, kubelet and kube-proxy in namespaces of their own.

Why: kwok only pretends pods run. This node runs them, isolated from the host in its own network
and mount namespaces, so nothing of the host's own network namespace (rules, routes, sysctls)
changes; only a veth pair joins the two.
"""
