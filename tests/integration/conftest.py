"""The real control plane for integration tests: started once per session, one namespace per test.

With ``KUBECONFIG`` set, the tests use that cluster instead and start nothing.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from kuberth.cluster.build import Binaries, Builder
from kuberth.cluster.plane import ControlPlane
from kuberth.cluster.versions import Versions
from kuberth.settings import Settings

TEST_LABEL = "kuberth.dev/test"


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    """The Go-built control plane (built on first use, then from the cache)."""
    return Builder(cache_dir=Settings().cache_dir, versions=Versions(), progress=print).ensure()


@pytest.fixture(scope="session")
def kubeconfig(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """An admin kubeconfig: the developer's ``KUBECONFIG``, or a fresh local plane's."""
    if os.environ.get("KUBECONFIG"):
        yield Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
        return
    binaries: Binaries = request.getfixturevalue("binaries")
    plane = ControlPlane(tmp_path_factory.mktemp("plane", numbered=True))
    try:
        yield plane.up(binaries)
    finally:
        plane.down()


@pytest.fixture(scope="session")
def admin_api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api: client.ApiClient = config.new_client_from_config(str(kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(request: pytest.FixtureRequest, admin_api: client.ApiClient) -> Iterator[str]:
    """A namespace of this test's own, labelled so leftovers can be found and removed."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"kt-{slug}-{secrets.token_hex(3)}"
    core = client.CoreV1Api(admin_api)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEST_LABEL: "true"}))
    )
    yield name
    if not request.config.getoption("--keep-namespaces"):
        core.delete_namespace(name)
