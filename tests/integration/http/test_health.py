"""The server's probes against the real control plane."""

from __future__ import annotations

from tests.integration.conftest import KuberthFactory


def test_readyz_is_ok_when_kubernetes_and_the_database_answer(kuberth: KuberthFactory) -> None:
    with kuberth() as http:
        response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"kubernetes": "ok", "database": "ok"}}


def test_unknown_routes_use_the_error_shape(kuberth: KuberthFactory) -> None:
    with kuberth() as http:
        response = http.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Not Found", "field": None}
