"""Settings come from KUBERTH_* variables, with XDG-aware defaults for local state."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kuberth.settings import Settings


def test_environment_variables_are_prefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERTH_PORT", "9123")
    monkeypatch.setenv("KUBERTH_KUBECONFIG", "/etc/kuberth/admin.kubeconfig")
    monkeypatch.setenv("PORT", "1")
    settings = Settings()
    assert settings.port == 9123
    assert settings.kubeconfig == Path("/etc/kuberth/admin.kubeconfig")


def test_state_and_cache_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = Settings()
    assert settings.cluster_dir == tmp_path / "state/kuberth/cluster"
    assert settings.cache_dir == tmp_path / "cache/kuberth"


def test_invalid_values_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERTH_PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        Settings()
