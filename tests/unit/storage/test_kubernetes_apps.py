"""An app's bundle of manifests and the references that tie its parts to its Deployment."""

from __future__ import annotations

import copy

import pytest

from kuberth.services.builders import workloads as build
from kuberth.services.specs import AppSpec
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.apps import (
    ORDER,
    AppManifests,
    AppParts,
    owned_by,
    owner_reference,
    with_owner,
)


def _bundle(name: str = "shop") -> AppManifests:
    spec = AppSpec(name=name, image="nginx:1.27", port=8080)
    return AppManifests(
        *build.app(spec, namespace="alice", host=f"{name}-alice.apps.localhost", ingress_class="x")
    )


def _stored(manifest: JSON, uid: str) -> JSON:
    """``manifest`` as the API server would return it: with its uid."""
    stored = copy.deepcopy(manifest)
    stored["metadata"]["uid"] = uid
    return stored


def test_the_bundle_holds_the_parts_by_plural_in_the_order_of_creation() -> None:
    app = _bundle()
    assert app.name == "shop"
    assert [plural for plural, _ in app] == ["deployments", "services", "ingresses"] == list(ORDER)
    assert [part["kind"] for _, part in app] == ["Deployment", "Service", "Ingress"]
    assert app["ingresses"] is app.ingresses
    with pytest.raises(KeyError):
        app["pods"]


def test_the_parts_of_one_bundle_share_one_name() -> None:
    app, other = _bundle("shop"), _bundle("cart")
    with pytest.raises(ValueError, match=r"share one name, not \['cart', 'shop'\]"):
        AppManifests(app.deployments, other.services, app.ingresses)


def test_parts_found_are_complete_only_with_all_three() -> None:
    app = _bundle()
    assert AppParts(app.deployments, app.services, app.ingresses).complete() == app
    missing = AppParts(deployments=app.deployments, ingresses=app.ingresses)
    assert missing.complete() is None
    assert missing["services"] is None
    assert missing["deployments"] is app.deployments


def test_a_part_is_owned_by_the_stored_deployment_not_its_controller() -> None:
    app = _bundle()
    deployment = _stored(app.deployments, "uid-1")
    before = copy.deepcopy(app.services)
    owned = with_owner(app.services, deployment)
    assert app.services == before  # a copy: the bundle's manifest is left as it is
    assert owned["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "shop",
            "uid": "uid-1",
            "controller": False,
            "blockOwnerDeletion": False,
        }
    ]
    assert owner_reference(deployment) == owned["metadata"]["ownerReferences"][0]
    assert owned_by(owned, deployment)
    assert not owned_by(app.services, deployment)


def test_owning_again_replaces_a_reference_to_an_earlier_deployment_and_keeps_others() -> None:
    app = _bundle()
    earlier, now = _stored(app.deployments, "uid-1"), _stored(app.deployments, "uid-2")
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "name": "settings", "uid": "uid-9"}
    part = with_owner(app.ingresses, earlier)
    part["metadata"]["ownerReferences"].insert(0, foreign)
    owned = with_owner(part, now)
    assert [ref["uid"] for ref in owned["metadata"]["ownerReferences"]] == ["uid-9", "uid-2"]
    assert owned_by(owned, now)
    assert not owned_by(owned, earlier)
    assert with_owner(owned, now) == owned  # owning twice changes nothing
