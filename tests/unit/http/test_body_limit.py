"""Bodies over the limit are refused before they are buffered, declared or chunked."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from kuberth.http.body_limit import BodyLimitMiddleware


def _client() -> TestClient:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.add_middleware(BodyLimitMiddleware, max_bytes=1000)
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
