"""FastAPI's validation errors in the one error shape: 400 for a body that is not JSON, 422 naming
the field otherwise (never a character offset or a union member as the "field")."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from fastapi import Body, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, BeforeValidator

from kuberth.http.errors import install_error_handlers
from kuberth.http.routes.workloads import _json_object


class Concise(BaseModel):
    name: str
    limits: dict[Literal["cpu"], str] = {}


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/concise")
    def concise(body: Concise) -> dict[str, str]:
        return {"name": body.name}

    @app.post("/either")
    def either(
        body: Annotated[Concise | dict[str, Any], BeforeValidator(_json_object), Body()],
    ) -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.fixture
def http() -> TestClient:
    return TestClient(_app())


@pytest.mark.parametrize("content", [b"{", b'{"name": "a\x00"}', b"[1,"])
def test_a_body_that_is_not_json_is_400(http: TestClient, content: bytes) -> None:
    response = http.post("/concise", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert body["field"] is None
    assert body["message"].startswith("the body is not valid JSON")


def test_a_body_that_is_not_utf8_is_400(http: TestClient) -> None:
    response = http.post(
        "/concise", content=b'{"name": "\xff"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def test_a_bad_dict_key_names_the_key(http: TestClient) -> None:
    response = http.post("/concise", json={"name": "a", "limits": {"gpu": "1"}})
    assert response.status_code == 422
    assert response.json()["field"] == "limits.gpu"


def test_a_body_of_the_wrong_type_says_body(http: TestClient) -> None:
    response = http.post("/concise", json=[1])
    assert response.status_code == 422
    assert response.json()["field"] is None
    assert response.json()["message"].startswith("body: ")


@pytest.mark.parametrize("body", [[{"name": "a"}], "a", 5, None])
def test_a_union_body_that_is_no_object_names_no_union_member(http: TestClient, body: Any) -> None:
    response = http.post(
        "/either", content=_dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_request",
        "message": "body: the body must be a JSON object",
        "field": None,
    }


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
