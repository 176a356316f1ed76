"""/readyz tells the truth when the API server cannot be reached: 503, Retry-After, one shape."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from kuberth.cluster.plane import free_port
from kuberth.http.app import create_app
from kuberth.settings import Settings


def test_unreachable_api_server_is_503_with_retry_after(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
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
