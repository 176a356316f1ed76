"""The throwaway Go modules and the build's refusals, which must name what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuberth.cluster import build
from kuberth.cluster.build import (
    Builder,
    BuildError,
    binaries_for,
    etcd_go_mod,
    kube_router_go_mod,
    kubernetes_go_mod,
    kubernetes_ldflags,
)
from kuberth.cluster.versions import Versions

KUBERNETES_MOD = """module k8s.io/kubernetes

go 1.26.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/example/fork => github.com/example/fork v1.2.3
)
"""


def test_kubernetes_module_replaces_each_staging_module_by_its_release() -> None:
    go_mod = kubernetes_go_mod(KUBERNETES_MOD, Versions(kubernetes="1.36.3"))
    assert "go 1.26.0\n" in go_mod
    assert "require k8s.io/kubernetes v1.36.3\n" in go_mod
    assert "\tk8s.io/api => k8s.io/api v0.36.3\n" in go_mod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.36.3\n" in go_mod
    assert "github.com/example/fork" not in go_mod  # only staging modules are replaced
    for command in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        assert (
            f"\tk8s.io/kubernetes/cmd/{command}\n" in go_mod
        )  # `tool` keeps tidy from dropping it


def test_kubernetes_module_refuses_a_go_mod_without_staging() -> None:
    with pytest.raises(BuildError, match="no staging modules"):
        kubernetes_go_mod("module k8s.io/kubernetes\n\ngo 1.26.0\n", Versions())


def test_etcd_module_builds_the_server_package() -> None:
    go_mod = etcd_go_mod("module go.etcd.io/etcd/server/v3\n\ngo 1.25.0\n", Versions(etcd="3.6.16"))
    assert "go 1.25.0\n" in go_mod
    assert "require go.etcd.io/etcd/server/v3 v3.6.16\n" in go_mod


def test_kube_router_module_builds_its_command_with_a_go_that_knows_tool() -> None:
    mod = "module github.com/cloudnativelabs/kube-router/v2\n\nrequire x v1\n\ngo 1.21\n"
    go_mod = kube_router_go_mod(mod, Versions(kube_router="2.1.0"))
    assert "go 1.24\n" in go_mod  # `tool` needs 1.24; kube-router v2.1.0 declares 1.21
    assert "require github.com/cloudnativelabs/kube-router/v2 v2.1.0\n" in go_mod
    assert "tool github.com/cloudnativelabs/kube-router/v2/cmd/kube-router\n" in go_mod
    newer = kube_router_go_mod(mod.replace("go 1.21", "go 1.26.0"), Versions())
    assert "go 1.26.0\n" in newer


def test_ldflags_stamp_the_version_for_server_and_client() -> None:
    flags = kubernetes_ldflags(Versions(kubernetes="1.36.3"))
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.36.3" in flags
        assert f"-X {package}.gitMinor=36" in flags


def test_binaries_are_keyed_by_version(tmp_path: Path) -> None:
    binaries = binaries_for(tmp_path, Versions(kubernetes="1.36.3", etcd="3.6.16", kwok="0.8.0"))
    assert (
        binaries.kubernetes("kube-apiserver") == tmp_path / "bin/kubernetes-v1.36.3/kube-apiserver"
    )
    assert binaries.etcd == tmp_path / "bin/etcd-v3.6.16/etcd"
    assert binaries.missing() == ["kubernetes", "etcd", "kwok"]


def test_no_go_toolchain_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match="Go toolchain is not installed"):
        Builder(cache_dir=tmp_path, versions=Versions(), progress=print).ensure()


def test_a_full_disk_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "REQUIRED_FREE_BYTES", 1 << 60)
    with pytest.raises(BuildError, match="out of disk"):
        Builder(cache_dir=tmp_path, versions=Versions(), progress=print).ensure()


def test_an_unreachable_module_proxy_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    monkeypatch.setenv("GOFLAGS", "-modcacherw")
    monkeypatch.setenv("GOSUMDB", "off")
    with pytest.raises(BuildError, match=r"cannot download k8s.io/kubernetes@v.* Go module proxy"):
        Builder(cache_dir=tmp_path / "cache", versions=Versions(), progress=print).ensure()


TRAEFIK_MOD = """module github.com/traefik/traefik/v3

go 1.25.0

require github.com/gorilla/mux v1.8.1

replace (
\tgithub.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.2020-a37a7636d23e
\tgithub.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59 // a fork
\tgithub.com/mailgun/minheap => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595
)

replace github.com/example/local => ./local

// ambiguous import: a comment after the block
"""


def test_traefik_module_copies_its_forks_and_not_its_local_paths() -> None:
    go_mod = build.traefik_go_mod(TRAEFIK_MOD, Versions(traefik="3.6.12"))
    assert "go 1.25.0\n" in go_mod
    assert "require github.com/traefik/traefik/v3 v3.6.12\n" in go_mod
    assert (
        "\tgithub.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59\n"
        in go_mod
    )
    assert "go-http-auth => github.com/containous/go-http-auth" in go_mod
    assert "minheap => github.com/containous/minheap" in go_mod
    assert "./local" not in go_mod
    assert "tool github.com/traefik/traefik/v3/cmd/traefik\n" in go_mod


def test_traefik_module_refuses_a_go_mod_without_its_forks() -> None:
    with pytest.raises(BuildError, match="replaces no module"):
        build.traefik_go_mod("module x\n\ngo 1.25.0\n", Versions())
