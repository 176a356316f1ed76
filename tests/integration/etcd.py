"""The local plane's etcd, reached directly: compacting it now instead of in five minutes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest


def compact_etcd(kubeconfig: Path) -> int:
    """Compact the local plane's etcd up to now, through etcd's own JSON gateway; returns the
    revision compacted to (every resourceVersion before it is gone).

    The API server compacts every five minutes: a version is only reliably gone after this.
    """
    state = kubeconfig.parent / "state.json"  # the local plane's (kuberth.cluster.components)
    if not state.exists():
        pytest.skip("needs the local plane's etcd (KUBECONFIG names another cluster)")
    etcd = f"http://127.0.0.1:{json.loads(state.read_text())['ports']['etcd_client']}"
    key = base64.b64encode(b"/").decode()
    revision = httpx.post(f"{etcd}/v3/kv/range", json={"key": key, "limit": 1}, timeout=30).json()[
        "header"
    ]["revision"]
    compacted = httpx.post(
        f"{etcd}/v3/kv/compaction", json={"revision": revision, "physical": True}, timeout=60
    )
    assert compacted.status_code == 200, compacted.text
    return int(revision)
