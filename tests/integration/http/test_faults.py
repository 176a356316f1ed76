"""Faults: the database going away mid-service is a 503 with Retry-After, and nothing half-made."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from kuberth.devtools.github import StandInServer
from tests.integration.postgres import PostgresServer
from tests.integration.signin import sign_in


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, so stopping it disturbs no other test."""
    directory = Path(tempfile.mkdtemp(prefix="kuberth-postgres-fault-"))
    server = PostgresServer(directory).start()
    yield server
    with contextlib.suppress(RuntimeError):  # the test may have stopped it already
        server.stop()
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
        httpx.Client(base_url=url) as http,
    ):
        assert sign_in(http, github, login=login, user_id=new_id()).status_code == 302
        token = http.post("/api/v1/tokens", json={"name": "t"}).json()["token"]
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
