"""/readyz tells the truth when the API server cannot be reached: 503, Retry-After, one shape."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from kuberth.http.app import create_app
from kuberth.settings import Settings
from tests.kubeconfigs import unreachable


def test_unreachable_api_server_is_503_with_retry_after(tmp_path: Path) -> None:
    kubeconfig = unreachable(tmp_path / "kubeconfig")
    settings = Settings(
        environment="development",
        kubeconfig=kubeconfig,
        database_url=f"sqlite:///{tmp_path}/kuberth.db",
        kubernetes_retry_after=7,
        kubernetes_request_timeout=2,
    )
    with TestClient(create_app(settings)) as http:
        assert http.get("/healthz").json() == {"status": "ok", "checks": {}}

        response = http.get("/readyz")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
        body = response.json()
        assert body["error"] == "kubernetes_unavailable"
        assert "unreachable" in body["message"]
