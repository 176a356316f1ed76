"""What `kuberth dev` changes in the settings when a real node runs (and Traefik on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuberth.cli import _ingress_settings, _real_node_settings
from kuberth.cluster.build import NodeBinaries
from kuberth.cluster.images import DemoImage
from kuberth.cluster.node import ingress
from kuberth.settings import Settings

NODE = NodeBinaries(
    directory=Path("/cache/node"),
    images={"web": DemoImage(name="web", key="0123456789ab", archive=Path("/cache/web.tar"))},
    kube_router_dir=Path("/cache/kube-router"),
)


def test_tenants_pods_go_to_the_real_node_and_the_forms_suggest_its_web_image() -> None:
    update = _real_node_settings(Settings(), NODE)
    assert update["tenant_node_selector"] == {"kuberth.dev/node": "real"}
    assert update["tenant_tolerations"] == [
        {"key": "kuberth.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert update["suggested_image"] == "kuberth.local/web:0123456789ab"


def test_an_operators_own_choices_win() -> None:
    settings = Settings(tenant_node_selector={"pool": "mine"}, suggested_image="me/app:1")
    assert _real_node_settings(settings, NODE) == {}


def test_dev_points_kuberth_at_traefik_unless_the_operator_chose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("KUBERTH_INGRESS_CLASSES", "KUBERTH_INGRESS_CONTROLLER_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    assert _ingress_settings(Settings()) == {
        "ingress_controller_namespace": ingress.NAMESPACE,
        "ingress_classes": [ingress.INGRESS_CLASS],
    }
    monkeypatch.setenv("KUBERTH_INGRESS_CLASSES", '["nginx"]')
    assert _ingress_settings(Settings()) == {"ingress_controller_namespace": ingress.NAMESPACE}
    chosen = Settings(ingress_controller_namespace="ingress-nginx")
    assert "ingress_controller_namespace" not in _ingress_settings(chosen)
