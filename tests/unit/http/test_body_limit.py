"""Bodies over the limit are refused before they are buffered, declared or chunked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.testclient import TestClient

from kuberth.http.body_limit import BodyLimitMiddleware
from kuberth.http.errors import install_error_handlers


def _client() -> TestClient:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/parsed")
    async def parsed(body: Annotated[dict[str, Any], Body()]) -> dict[str, int]:
        return {"keys": len(body)}  # FastAPI reads and parses the body itself

    app.add_middleware(BodyLimitMiddleware, max_bytes=1000)
    install_error_handlers(app)
    return TestClient(app)


def test_a_body_within_the_limit_passes() -> None:
    response = _client().post("/echo", content=b"x" * 1000)
    assert response.status_code == 200
    assert response.json() == {"bytes": 1000}


def test_a_declared_length_over_the_limit_is_413() -> None:
    response = _client().post("/echo", content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_a_chunked_body_growing_over_the_limit_is_413() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 200

    response = _client().post("/echo", content=chunks())
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["message"]


def test_a_chunked_body_over_the_limit_is_413_where_fastapi_parses_it() -> None:
    """Not FastAPI's "There was an error parsing the body" (a 400)."""

    def chunks() -> Iterator[bytes]:
        yield b'{"a": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    response = _client().post(
        "/parsed", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": "too_large",
        "message": "the request body is larger than 1000 bytes",
        "field": None,
    }
