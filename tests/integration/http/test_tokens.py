"""Personal API tokens: shown once, stored hashed, usable as Bearer, revocable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from sqlalchemy import create_engine, text

from kuberth.devtools.github import StandInServer
from tests.integration.conftest import KuberthFactory
from tests.integration.signin import sign_in


def test_token_lifecycle(
    kuberth: KuberthFactory, github: StandInServer, database_url: str, new_id: Callable[[], int]
) -> None:
    login = f"t{secrets.token_hex(3)}"
    with kuberth(database_url=database_url) as http:
        sign_in(http, github, login=login, user_id=new_id())
        created = http.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 30})
        assert created.status_code == 201
        token = created.json()["token"]
        assert token.startswith("kbt_")
        listed = http.get("/api/v1/tokens").json()["items"]
        assert [t["name"] for t in listed] == ["ci"]
        assert "token" not in listed[0]  # shown once, at creation
        http.cookies.clear()

        bearer = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/v1/me", headers=bearer).json()["login"] == login
        assert http.get(f"/api/v1/namespaces/{login}", headers=bearer).status_code == 200

        assert (
            http.delete(f"/api/v1/tokens/{created.json()['id']}", headers=bearer).status_code == 204
        )
        revoked = http.get("/api/v1/me", headers=bearer)
        assert revoked.status_code == 401
        assert revoked.json()["error"] == "unauthenticated"
        assert (
            http.get("/api/v1/me", headers={"Authorization": "Bearer kbt_forged"}).status_code
            == 401
        )

    with create_engine(database_url).connect() as db:
        stored = db.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert token not in stored  # revoked: gone; and never stored in the clear
    assert hashlib.sha256(token.encode()).hexdigest() not in stored


def test_a_token_is_only_its_owners(
    kuberth: KuberthFactory, github: StandInServer, new_id: Callable[[], int]
) -> None:
    with kuberth() as http:
        sign_in(http, github, login=f"t{secrets.token_hex(3)}", user_id=new_id())
        mine = http.post("/api/v1/tokens", json={"name": "mine"}).json()
        http.cookies.clear()
        sign_in(http, github, login=f"t{secrets.token_hex(3)}", user_id=new_id())
        assert http.delete(f"/api/v1/tokens/{mine['id']}").status_code == 404
        assert http.get("/api/v1/tokens").json()["items"] == []
        bad = http.post("/api/v1/tokens", json={"name": ""})
        assert bad.status_code == 422
        assert bad.json()["field"] == "name"
