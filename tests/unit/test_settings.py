"""Settings come from KUBERTH_* variables, with XDG-aware defaults for local state."""

from __future__ import annotations

import ipaddress
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


def test_a_secret_key_is_required_outside_development() -> None:
    with pytest.raises(ValueError, match="KUBERTH_SECRET_KEY"):
        Settings(environment="production").session_secret()
    with pytest.raises(ValueError, match="KUBERTH_SECRET_KEY"):
        Settings(environment="production", secret_key="short").session_secret()
    assert len(Settings(environment="production", secret_key="k" * 32).session_secret()) == 32


def test_development_makes_its_own_secret_key() -> None:
    assert len(Settings(environment="development").session_secret()) >= 32


def test_the_redirect_uri_is_exact() -> None:
    settings = Settings(public_url="https://kuberth.example.com/")
    assert settings.oauth_redirect_uri == "https://kuberth.example.com/auth/github/callback"


def test_logs_are_json_outside_development_unless_asked_otherwise() -> None:
    assert Settings(environment="production").json_logs
    assert not Settings(environment="development").json_logs
    assert Settings(environment="development", log_format="json").json_logs
    assert not Settings(environment="production", log_format="text").json_logs


def test_the_lease_is_renewed_more_often_than_it_lasts() -> None:
    assert Settings(lease_duration=2, lease_renew_interval=0.5).lease_duration == 2
    with pytest.raises(ValidationError, match="RENEW_INTERVAL"):
        Settings(lease_duration=5, lease_renew_interval=5)


def test_links_to_apps_are_a_url_around_their_host() -> None:
    assert Settings().app_url_template.format(host="web-a.apps.localhost") == (
        "http://web-a.apps.localhost/"
    )
    assert Settings(app_url_template="https://{host}/").app_url_template == "https://{host}/"
    assert Settings(app_url_template="http://{host}:8080/").app_url_template
    for bad in ("http://example.com/", "ftp://{host}/", "http://{host}/{path}"):
        with pytest.raises(ValidationError, match="app_url_template"):
            Settings(app_url_template=bad)


def test_tenant_egress_defaults_to_the_internet_without_the_clusters_own_networks() -> None:
    settings = Settings()
    assert settings.tenant_egress == "internet"
    blocked = [ipaddress.IPv4Network(c) for c in settings.tenant_egress_blocked_cidrs]
    # The local plane's pods and Services, its real node's veth, and cloud metadata endpoints.
    for address in ("10.244.0.7", "10.96.0.1", "100.72.3.2", "169.254.169.254", "192.168.1.1"):
        assert any(ipaddress.IPv4Address(address) in network for network in blocked), address
    assert not any(ipaddress.IPv4Address("1.1.1.1") in network for network in blocked)


def test_egress_blocked_ranges_must_be_ipv4_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERTH_TENANT_EGRESS_BLOCKED_CIDRS", '["10.0.0.0/8", "fd00::/8"]')
    with pytest.raises(ValidationError, match="not an IPv4 network"):
        Settings()
    with pytest.raises(ValidationError, match=r"0\.0\.0\.0/0"):
        Settings(tenant_egress_blocked_cidrs=["0.0.0.0/0"])
    with pytest.raises(ValidationError, match="tenant_egress"):
        Settings(tenant_egress="anywhere")
    monkeypatch.setenv("KUBERTH_TENANT_EGRESS_BLOCKED_CIDRS", '["203.0.113.0/24"]')
    assert Settings().tenant_egress_blocked_cidrs == ["203.0.113.0/24"]
