"""What `kuberth dev` changes in the settings when a real node runs."""

from __future__ import annotations

from pathlib import Path

from kuberth.cli import _real_node_settings
from kuberth.cluster.build import NodeBinaries
from kuberth.cluster.images import DemoImage
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
