"""All of Kuberth's configuration, read once from ``KUBERTH_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _xdg_dir(variable: str, fallback: str) -> Path:
    base = os.environ.get(variable)
    return (Path(base) if base else Path.home() / fallback) / "kuberth"


class Settings(BaseSettings):
    """Kuberth's settings; every field can be set as ``KUBERTH_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="KUBERTH_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        default="production",
        description="`development` relaxes checks meant for real deployments.",
    )
    host: str = Field(default="127.0.0.1", description="Address `kuberth serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `kuberth serve` listens on.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    kubeconfig: Path | None = Field(
        default=None,
        description=(
            "Kubeconfig for Kuberth's own identity. Unset: `KUBECONFIG`, then the in-cluster "
            "service account, then ~/.kube/config."
        ),
    )
    kubernetes_request_timeout: float = Field(
        default=10.0, gt=0, description="Seconds any single Kubernetes API call may take."
    )
    kubernetes_retry_after: int = Field(
        default=5, ge=1, description="Retry-After (seconds) sent when the cluster is unreachable."
    )

    cluster_dir: Path = Field(
        default_factory=lambda: _xdg_dir("XDG_STATE_HOME", ".local/state") / "cluster",
        description="State of the local control plane: certificates, etcd data, logs, kubeconfig.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: _xdg_dir("XDG_CACHE_HOME", ".cache"),
        description="Where the Go-built control-plane binaries are cached, keyed by version.",
    )


@lru_cache
def get_settings() -> Settings:
    """Settings of this process, read from the environment once."""
    return Settings()
