"""The real control plane for integration tests: started once per session, one namespace per test.

With ``KUBECONFIG`` set, the tests use that cluster instead and start nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient
from kubernetes import client, config

from kuberth.cluster.build import Binaries, Builder
from kuberth.cluster.node import prerequisites
from kuberth.cluster.node.layout import NODE_SELECTOR, TOLERATION
from kuberth.cluster.node.runtime import RealNode
from kuberth.cluster.plane import ControlPlane, free_port
from kuberth.cluster.versions import Versions
from kuberth.devtools.github import GitHubStandIn, StandInServer, ThreadedServer
from kuberth.services.builders.tenant import OWNER_ID
from kuberth.settings import Settings
from kuberth.storage.database.engine import Database, make_engine, migrate
from kuberth.storage.kubernetes.api import KubernetesApi
from tests.integration.kubernetes import api_of
from tests.integration.postgres import PostgresServer
from tests.integration.signin import sign_in
from tests.timing import scaled

TEST_LABEL = "kuberth.dev/test"


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    """The Go-built control plane (built on first use, then from the cache)."""
    return Builder(cache_dir=Settings().cache_dir, versions=Versions(), progress=print).ensure()


def _no_real_node() -> str | None:
    """Why the suite's plane runs without a real node, or None when it gets one."""
    if os.environ.get("KUBECONFIG"):
        return "the tests use the cluster KUBECONFIG names"
    if os.environ.get("KUBERTH_TEST_REAL_NODE") == "0":
        return "KUBERTH_TEST_REAL_NODE=0"
    missing = prerequisites.missing()
    return prerequisites.explain(missing) if missing else None


@pytest.fixture(scope="session")
def plane(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane | None]:
    """The suite's own plane, with a real node whenever this machine allows one (tenants' pods
    still go to the kwok node unless a test pins them: see `real_node`); None under
    ``KUBECONFIG``."""
    if os.environ.get("KUBECONFIG"):
        yield None
        return
    binaries: Binaries = request.getfixturevalue("binaries")
    node = None
    if _no_real_node() is None:
        node = Builder(
            cache_dir=Settings().cache_dir, versions=Versions(), progress=print
        ).ensure_node()
    plane = ControlPlane(tmp_path_factory.mktemp("plane", numbered=True))
    try:
        plane.up(binaries, node=node)
        yield plane
    finally:
        plane.down()


@pytest.fixture(scope="session")
def kubeconfig(plane: ControlPlane | None) -> Path:
    """An admin kubeconfig: the developer's ``KUBECONFIG``, or the suite's plane's."""
    if plane is None:
        return Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    return plane.kubeconfig


@pytest.fixture(scope="session")
def real_node(plane: ControlPlane | None) -> RealNode:
    """The suite's real node; the test is skipped, with the reason, on a machine without one."""
    reason = _no_real_node()
    if reason is not None or plane is None or not plane.real_node.exists():
        pytest.skip(f"no real node: {reason or 'it did not start'}")
    return plane.real_node


#: Settings that put a Kuberth's tenants' pods on the real node (as `kuberth dev` does).
ON_REAL_NODE: dict[str, object] = {
    "tenant_node_selector": NODE_SELECTOR,
    "tenant_tolerations": [TOLERATION],
}


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


@pytest.fixture(scope="session")
def github() -> Iterator[StandInServer]:
    """The local GitHub stand-in, serving on a loopback port for the whole session."""
    server = StandInServer(GitHubStandIn(), port=free_port()).start(timeout=scaled(30))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server (Debian's binaries), one per session.

    Its directory is outside pytest's (which only root may enter): the server runs as `postgres`.
    """
    directory = Path(tempfile.mkdtemp(prefix="kuberth-postgres-"))
    try:
        server = PostgresServer(directory).start()  # stops a server that did not get ready
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind Kuberth supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/kuberth.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"kt_{secrets.token_hex(6)}")


@pytest.fixture
async def database(database_url: str, anyio_backend: str) -> AsyncIterator[Database]:
    """A migrated database of each kind, for tests marked ``anyio``: its async pool is closed on
    the test's event loop, to which its connections belong."""
    database = Database(make_engine(database_url))
    migrate(database.engine)
    yield database
    await database.adispose()


@pytest.fixture
async def aiosqlite_threads_ended(anyio_backend: str) -> AsyncIterator[None]:
    """Waits, before the test's event loop closes, for the aiosqlite worker threads the test
    started to end. aiosqlite stops the thread of a connection that failed to open without
    waiting for it; the thread's last step hands a result to the event loop, and on a busy
    machine a loop closed by then made the thread fail (an unhandled exception in a thread,
    reported against whichever test ran next)."""
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        if thread.name.endswith("(_connection_worker_thread)"):  # aiosqlite's worker function
            await anyio.to_thread.run_sync(thread.join, scaled(10))
            assert not thread.is_alive(), f"{thread.name} still runs: a connection left open?"


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[KubernetesApi]:
    """Kuberth's own client of the plane (see :func:`~tests.integration.kubernetes.api_of`)."""
    kubernetes = api_of(kubeconfig)
    yield kubernetes
    kubernetes.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/kuberth.db"


KuberthFactory = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def kuberth_settings(
    kubeconfig: Path, github: StandInServer, sqlite_url: str
) -> Callable[..., Settings]:
    """Settings for a Kuberth against the plane and the stand-in, production-strict."""

    def make(public_url: str = "http://testserver", **overrides: object) -> Settings:
        github.state.redirect_uris.add(f"{public_url}/auth/github/callback")
        values: dict[str, object] = {
            "environment": "production",
            "kubeconfig": kubeconfig,
            "database_url": sqlite_url,
            "secret_key": secrets.token_urlsafe(32),
            "public_url": public_url,
            "github_url": github.url,
            "github_api_url": github.api_url,
            "github_client_id": github.state.client_id,
            "github_client_secret": github.state.client_secret,
            "signup_anyone": True,
            # Off unless a test is about it: a background pass would blur request counts.
            "reconcile_interval": 0,
            # Off unless a test is about it: tests send requests far faster than people do.
            "rate_limit_per_second": 0,
            **overrides,
        }
        return Settings(**values)

    return make


@pytest.fixture
def kuberth(kuberth_settings: Callable[..., Settings]) -> KuberthFactory:
    """Starts Kuberth in process (a TestClient); settings can be overridden."""

    @contextmanager
    def start(**overrides: object) -> Iterator[TestClient]:
        from kuberth.http.app import create_app

        with TestClient(create_app(kuberth_settings(**overrides)), follow_redirects=False) as http:
            yield http

    return start


@pytest.fixture
def kuberth_server(
    kuberth_settings: Callable[..., Settings],
) -> Callable[..., AbstractContextManager[str]]:
    """Starts Kuberth as a real HTTP server on a loopback port; yields its URL."""

    @contextmanager
    def start(**overrides: object) -> Iterator[str]:
        from kuberth.http.app import create_app

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = ThreadedServer(
            create_app(kuberth_settings(public_url=url, **overrides)), port=port
        )
        server.start(timeout=scaled(60))  # stops what it started if it cannot finish starting
        try:
            yield url
        finally:
            server.stop()

    return start


@pytest.fixture
def new_id(
    request: pytest.FixtureRequest, admin_api: client.ApiClient
) -> Iterator[Callable[[], int]]:
    """Fresh GitHub ids, so tests never meet each other's users on the shared cluster.

    The namespaces of these ids are deleted after the test (unless --keep-namespaces).
    """
    ids: list[int] = []

    def make() -> int:
        ids.append(10_000_000 + secrets.randbelow(10**9))
        return ids[-1]

    yield make
    if request.config.getoption("--keep-namespaces"):
        return
    core = client.CoreV1Api(admin_api)
    for github_id in ids:
        for ns in core.list_namespace(label_selector=f"{OWNER_ID}={github_id}").items:
            try:
                core.delete_namespace(ns.metadata.name)
            except client.ApiException as error:
                if error.status != 404:  # a test's own deletion may finish in between
                    raise


@dataclass
class Tenant:
    http: httpx.Client
    login: str
    github_id: int

    @property
    def namespace(self) -> str:
        return self.login


@contextmanager
def _signed_in_tenants(
    url: str, github: StandInServer, new_id: Callable[[], int]
) -> Iterator[Callable[[], Tenant]]:
    with contextlib.ExitStack() as browsers:

        def make() -> Tenant:
            http = browsers.enter_context(httpx.Client(base_url=url, timeout=scaled(120)))
            login, github_id = f"t{secrets.token_hex(4)}", new_id()
            assert sign_in(http, github, login=login, user_id=github_id).status_code == 302
            return Tenant(http, login, github_id)

        yield make


@pytest.fixture
def tenants(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> Iterator[Callable[..., Tenant]]:
    """Signed-in tenants, each with their own browser (cookie jar), on one Kuberth server."""
    with kuberth_server() as url, _signed_in_tenants(url, github, new_id) as make:
        yield make


@pytest.fixture
def real_node_tenants(
    real_node: RealNode,
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> Iterator[Callable[..., Tenant]]:
    """As `tenants`, on a Kuberth that puts its tenants' pods on the real node (skipped where
    there is none)."""
    with (
        kuberth_server(**ON_REAL_NODE) as url,
        _signed_in_tenants(url, github, new_id) as make,
    ):
        yield make
