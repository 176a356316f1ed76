"""Faults: the database or the API server going away is a 503 with Retry-After, nothing is
half-made, and work converges (or a waiting delete resumes) once they are back."""

from __future__ import annotations

import concurrent.futures
import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from kubernetes import client, config
from prometheus_client import REGISTRY

from kuberth.cluster.build import Binaries
from kuberth.cluster.plane import ControlPlane
from kuberth.devtools.github import StandInServer
from tests.integration.postgres import PostgresServer
from tests.integration.signin import sign_in
from tests.timing import eventually, scaled


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, so stopping it disturbs no other test."""
    directory = Path(tempfile.mkdtemp(prefix="kuberth-postgres-fault-"))
    try:
        server = PostgresServer(directory).start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):  # the test may have stopped it already
                server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_database_going_away_is_503_and_nothing_is_half_made(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    own_postgres: PostgresServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    login = f"f{secrets.token_hex(4)}"
    database = own_postgres.create_database("faults")
    with (
        kuberth_server(database_url=database, kubernetes_retry_after=4) as url,
        httpx.Client(base_url=url, timeout=scaled(60)) as http,
    ):
        assert sign_in(http, github, login=login, user_id=new_id()).status_code == 302
        created = http.post("/api/v1/tokens", json={"name": "t"})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}

        own_postgres.stop(mode="fast")
        for response in (
            http.get("/api/v1/me", headers=bearer),
            http.get("/api/v1/namespaces"),
            http.post("/api/v1/namespaces", json={"name": f"{login}-new"}, headers=bearer),
            http.get("/readyz"),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "database_unavailable"
            assert response.headers["Retry-After"] == "4"
        # The namespace was not created behind the database's back.
        names = [n.metadata.name for n in client.CoreV1Api(admin_api).list_namespace().items]
        assert f"{login}-new" not in names

        own_postgres.resume()
        after = http.get("/api/v1/me", headers=bearer)
        assert after.status_code == 200, after.text
        assert after.json()["login"] == login
        assert http.get("/readyz").status_code == 200


@pytest.fixture
def own_plane(binaries: Binaries, tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane of this test's own, whose API server it may stop."""
    plane = ControlPlane(tmp_path / "plane")
    plane.up(binaries)  # leaves nothing running when it fails
    try:
        yield plane
    finally:
        plane.down()


def _watches_opened() -> float:
    return (
        REGISTRY.get_sample_value(
            "kuberth_kubernetes_requests_total", {"verb": "WATCH", "code": "200"}
        )
        or 0.0
    )


def test_the_api_server_going_away_is_503_and_sign_up_converges_after(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    own_plane: ControlPlane,
    binaries: Binaries,
    new_id: Callable[[], int],
) -> None:
    login, user_id = f"a{secrets.token_hex(4)}", new_id()
    settings = {
        "kubeconfig": own_plane.kubeconfig,
        "kubernetes_request_timeout": 3,
        "kubernetes_retry_after": 6,
    }
    with kuberth_server(**settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        own_plane.stop_component("kube-apiserver")
        refused = sign_in(http, github, login=login, user_id=user_id)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "6"
        assert http.get("/api/v1/me").status_code == 401  # nobody was recorded
        assert http.get("/readyz").status_code == 503

        own_plane.start_component(binaries, "kube-apiserver")
        own_plane.restart_crashed(binaries)  # a young controller manager may have given up
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        detail = http.get(f"/api/v1/namespaces/{login}").json()
        assert detail["quota"]["pods"]["hard"] == "50"
        api = config.new_client_from_config(str(own_plane.kubeconfig))
        binding = client.RbacAuthorizationV1Api(api).read_namespaced_role_binding(
            "kuberth-tenant", login
        )
        assert binding.subjects[0].name == f"kuberth:{user_id}"

        # A delete waiting on its watch survives an API server restart and sees the deletion
        # (the namespace controller takes several seconds, so the restart falls inside the wait).
        name = f"{login}-going"
        assert http.post("/api/v1/namespaces", json={"name": name}).status_code == 201
        watches = _watches_opened()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(http.delete, f"/api/v1/namespaces/{name}", params={"timeout": 90})
            # The DELETE has reached its watch: nothing in Kubernetes shows that, the metric of
            # the server (in this process) does.
            eventually(lambda: _watches_opened() > watches, within=30, what="the DELETE's watch")
            own_plane.stop_component("kube-apiserver")
            own_plane.start_component(binaries, "kube-apiserver")
            own_plane.restart_crashed(binaries)
            assert not waiting.done()
            assert waiting.result().status_code == 204
        with pytest.raises(client.ApiException) as gone:
            client.CoreV1Api(api).read_namespace(name)
        assert gone.value.status == 404
        api.close()
