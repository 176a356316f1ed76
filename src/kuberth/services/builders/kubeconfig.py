"""The kubeconfig a tenant downloads (pure)."""

from __future__ import annotations

import base64
from typing import Any


def kubeconfig(
    *, server: str, ca_pem: bytes | None, token: str, namespace: str, user: str
) -> dict[str, Any]:
    """One cluster, one user (a service-account token), one context pinned to the namespace."""
    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    context = f"kuberth-{namespace}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kuberth", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "kuberth", "user": user, "namespace": namespace},
            }
        ],
        "current-context": context,
    }
