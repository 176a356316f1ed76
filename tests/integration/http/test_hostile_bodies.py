"""Hostile bodies against a real server: deep nesting is a 400 naming it, an over-size body a 413
however it is sent, and neither leaves anything behind or harms the server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from kuberth.http.app import MAX_BODY_BYTES
from kuberth.http.json_bodies import MAX_DEPTH
from tests.integration.conftest import Tenant

JSON = {"content-type": "application/json"}


def _deep(levels: int, opener: str, closer: str) -> bytes:
    return (opener * levels + closer * levels).encode()


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent chunked: no Content-Length for the server to refuse up front."""
    yield b'{"name": "'
    sent = 10
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


@pytest.mark.parametrize(
    "body",
    [
        _deep(10_000, "[", "]"),
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        _deep(MAX_DEPTH + 1, "[", "]"),
    ],
    ids=["array-10000", "object-10000", "array-just-over"],
)
@pytest.mark.parametrize("route", ["namespaces", "deployments", "apps"])
def test_deep_nesting_is_a_400_naming_it(
    body: bytes, route: str, tenants: Callable[..., Tenant]
) -> None:
    alice = tenants()
    path = {
        "namespaces": "/api/v1/namespaces",
        "deployments": f"/api/v1/namespaces/{alice.namespace}/deployments",
        "apps": f"/api/v1/namespaces/{alice.namespace}/apps",
    }[route]
    response = alice.http.post(path, content=body, headers=JSON)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["error"] == "bad_request"
    assert f"more than {MAX_DEPTH} levels" in response.json()["message"]
    _nothing_changed(alice)


def test_a_deep_object_inside_a_native_deployment_is_a_400(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    deep: object = 1
    for _ in range(900):
        deep = {"a": deep}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "deep", "annotations": {}},
        "spec": {"selector": {"matchLabels": {"app": "deep"}}, "template": deep},
    }
    body = json.dumps(deployment).encode()  # 900 levels: within json.dumps' own reach
    response = alice.http.post(
        f"/api/v1/namespaces/{alice.namespace}/deployments", content=body, headers=JSON
    )
    assert response.status_code == 400, response.text[:300]
    assert f"more than {MAX_DEPTH} levels" in response.json()["message"]
    _nothing_changed(alice)


@pytest.mark.parametrize("route", ["namespaces", "deployments"])
def test_an_over_size_chunked_body_is_a_413(route: str, tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    path = {
        "namespaces": "/api/v1/namespaces",
        "deployments": f"/api/v1/namespaces/{alice.namespace}/deployments",
    }[route]
    response = alice.http.post(path, content=_chunks(5 * 1024 * 1024), headers=JSON)
    assert "content-length" not in response.request.headers  # really sent chunked
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"] == "too_large"
    assert str(MAX_BODY_BYTES) in response.json()["message"]
    _nothing_changed(alice)


def _nothing_changed(alice: Tenant) -> None:
    """The server still answers, and the tenant has its personal namespace and nothing in it."""
    listed = alice.http.get("/api/v1/namespaces")
    assert listed.status_code == 200, listed.text
    assert [ns["name"] for ns in listed.json()["items"]] == [alice.namespace]
    for kind in ("deployments", "apps"):
        items = alice.http.get(f"/api/v1/namespaces/{alice.namespace}/{kind}")
        assert items.status_code == 200, items.text
        assert items.json()["items"] == []
