"""The server's probes against the real control plane."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from kuberth.http.app import create_app
from kuberth.settings import Settings


def test_readyz_is_ok_when_the_api_server_is_ready(kubeconfig: Path) -> None:
    with TestClient(create_app(Settings(kubeconfig=kubeconfig))) as http:
        response = http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"kubernetes": "ok"}}


def test_unknown_routes_use_the_error_shape(kubeconfig: Path) -> None:
    with TestClient(create_app(Settings(kubeconfig=kubeconfig))) as http:
        response = http.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Not Found", "field": None}
