"""Kubeconfigs the tests need besides the plane's own."""

from __future__ import annotations

from pathlib import Path

import yaml

from kuberth.cluster.plane import free_port


def unreachable(path: Path) -> Path:
    """A kubeconfig whose API server address has nothing listening."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path
