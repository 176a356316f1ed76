"""Personal API tokens: shown once, stored hashed, usable as Bearer, revocable."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from sqlalchemy import create_engine, text

from kuberth.devtools.github import StandInServer
from tests.integration.conftest import KuberthFactory
from tests.integration.signin import sign_in
from tests.timing import eventually


def test_token_lifecycle(
    kuberth: KuberthFactory, github: StandInServer, database_url: str, new_id: Callable[[], int]
) -> None:
    login = f"t{secrets.token_hex(3)}"
    with kuberth(database_url=database_url) as http:
        assert sign_in(http, github, login=login, user_id=new_id()).status_code == 302
        created = http.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 30})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        assert token.startswith("kbt_")
        # While the token is live: its digest is stored, the token itself nowhere in the table.
        digest = hashlib.sha256(token.encode()).hexdigest()
        with create_engine(database_url).connect() as db:
            rows = [tuple(row) for row in db.execute(text("SELECT * FROM api_tokens"))]
        assert len(rows) == 1, rows
        assert digest in rows[0]
        assert not any(token in str(value) for value in rows[0]), rows
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
    assert digest not in stored  # revoked: gone


def test_a_token_is_only_its_owners(
    kuberth: KuberthFactory, github: StandInServer, new_id: Callable[[], int]
) -> None:
    owner = f"t{secrets.token_hex(3)}"
    with kuberth() as http:
        assert sign_in(http, github, login=owner, user_id=new_id()).status_code == 302
        created = http.post("/api/v1/tokens", json={"name": "mine"})
        assert created.status_code == 201, created.text
        mine = created.json()
        http.cookies.clear()
        assert (
            sign_in(http, github, login=f"t{secrets.token_hex(3)}", user_id=new_id()).status_code
            == 302
        )
        assert http.delete(f"/api/v1/tokens/{mine['id']}").status_code == 404
        listed = http.get("/api/v1/tokens")
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == []
        bad = http.post("/api/v1/tokens", json={"name": ""})
        assert bad.status_code == 422
        assert bad.json()["field"] == "name"
        # The refused revocation did nothing: the owner's token still works, as the owner.
        http.cookies.clear()
        me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {mine['token']}"})
        assert me.status_code == 200, me.text
        assert me.json()["login"] == owner


def test_a_token_deleted_elsewhere_stops_working_within_the_cache_time(
    kuberth: KuberthFactory, github: StandInServer, database_url: str, new_id: Callable[[], int]
) -> None:
    """A replica keeps a token's verdict a few seconds (here 1): a token deleted by another
    replica (here: straight in the database) still works until then, and not after; a namespace
    made through this replica counts at once."""
    login = f"t{secrets.token_hex(3)}"
    with kuberth(database_url=database_url, token_cache_seconds=1) as http:
        assert sign_in(http, github, login=login, user_id=new_id()).status_code == 302
        created = http.post("/api/v1/tokens", json={"name": "ci"})
        assert created.status_code == 201, created.text
        http.cookies.clear()
        bearer = {"Authorization": f"Bearer {created.json()['token']}"}
        assert http.get(f"/api/v1/namespaces/{login}", headers=bearer).status_code == 200

        extra = http.post("/api/v1/namespaces", headers=bearer, json={"name": f"{login}-x"})
        assert extra.status_code == 201, extra.text
        assert http.get(f"/api/v1/namespaces/{login}-x", headers=bearer).status_code == 200

        engine = create_engine(database_url)
        try:
            with engine.begin() as db:
                db.execute(
                    text("DELETE FROM api_tokens WHERE id = :id"), {"id": created.json()["id"]}
                )
        finally:
            engine.dispose()
        deleted_at = time.monotonic()
        kept = http.get("/api/v1/me", headers=bearer)
        if time.monotonic() - deleted_at < 0.5:  # else the machine was too slow to tell
            assert kept.status_code == 200, kept.text
        refused = eventually(
            lambda: (r := http.get("/api/v1/me", headers=bearer)).status_code == 401 and r,
            within=1.5,
            what="the deleted token refused",
        )
        assert refused.json()["error"] == "unauthenticated"
