"""Request ids, JSON log records with the request's context, and metrics by route template."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from kuberth.http.logs import JsonFormatter, TextFormatter, bind_user, redact
from kuberth.http.observability import install_metrics

log = logging.getLogger("kuberth.test")


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing}")
    def thing(thing: str) -> dict[str, str]:  # sync: runs in a worker thread
        bind_user(42)
        log.info("looked at %s", thing)
        return {"thing": thing}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    install_metrics(app)
    return app


@pytest.fixture
def records() -> Iterator[io.StringIO]:
    """Every record, JSON-formatted, one a line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def requests_counted(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "kuberth_http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


def test_a_request_id_is_made_or_kept_and_sent_back() -> None:
    with TestClient(make_app()) as http:
        made = http.get("/things/a").headers["X-Request-ID"]
        assert re.fullmatch("[0-9a-f]{32}", made), made
        assert http.get("/things/a").headers["X-Request-ID"] != made  # one per request
        kept = http.get("/things/a", headers={"X-Request-ID": "edge-7f3a.1"})
        assert kept.headers["X-Request-ID"] == "edge-7f3a.1"
        odd = http.get("/things/a", headers={"X-Request-ID": "<script>" + "x" * 200})
        # Not kept: a fresh one is made instead.
        assert re.fullmatch("[0-9a-f]{32}", odd.headers["X-Request-ID"]), odd.headers


def test_records_carry_the_request_and_user_even_from_worker_threads(
    records: io.StringIO,
) -> None:
    with TestClient(make_app()) as http:
        http.get("/things/a?code=secret-oauth-code", headers={"X-Request-ID": "r-1"})
    mine = [line for line in lines(records) if line.get("request_id") == "r-1"]
    handler_record, access = mine
    assert handler_record["message"] == "looked at a"
    assert handler_record["logger"] == "kuberth.test"
    assert handler_record["user_id"] == 42
    assert access["logger"] == "kuberth.access"
    assert access["route"] == "/things/{thing}"
    assert access["status"] == 200
    assert access["user_id"] == 42
    assert isinstance(access["duration_ms"], float)
    assert "secret-oauth-code" not in json.dumps(mine)  # the query string is never logged


def test_metrics_label_requests_by_route_template_not_path() -> None:
    before = requests_counted("/things/{thing}", "200")
    unmatched = requests_counted("unmatched", "404")
    boom = requests_counted("/boom", "500")
    with TestClient(make_app(), raise_server_exceptions=False) as http:
        for name in ("a", "b", "c"):
            http.get(f"/things/{name}")
        http.get("/nowhere/at/all")
        assert http.get("/boom").status_code == 500
        exposition = http.get("/metrics")
    assert requests_counted("/things/{thing}", "200") == before + 3
    assert requests_counted("unmatched", "404") == unmatched + 1
    assert requests_counted("/boom", "500") == boom + 1
    assert exposition.headers["content-type"].startswith("text/plain")
    assert 'route="/things/{thing}"' in exposition.text
    assert "/things/a" not in exposition.text


def test_tokens_never_reach_the_log() -> None:
    message = (
        "token kbt_AbC-123_x and Authorization: Bearer abc.DEF-123 and "
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    )
    assert redact(message) == ("token [redacted] and Authorization: [redacted] and [redacted]")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (message,), None)
    for formatter in (JsonFormatter(), TextFormatter()):
        formatted = formatter.format(record)
        assert "kbt_" not in formatted
        assert "abc.DEF" not in formatted
        assert "eyJ" not in formatted
