"""Which origins are Kuberth's own, as a browser writes them in ``Origin``."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from kuberth.http.csrf import own_origins


def _request(host: str, scheme: str = "http") -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": scheme,
            "server": ("10.0.0.1", 8000),
            "path": "/api/v1/namespaces",
            "query_string": b"",
            "headers": [(b"host", host.encode())],
        }
    )


def test_the_public_url_and_the_requested_host_are_own() -> None:
    own = own_origins(_request("10.0.0.1:8000"), "https://Kuberth.Example.com:443/")
    assert own == {"https://kuberth.example.com", "http://10.0.0.1:8000"}


@pytest.mark.parametrize(
    "public_url", ["https://kuberth.example.com", "https://kuberth.example.com/base/"]
)
def test_a_path_or_default_port_does_not_change_the_origin(public_url: str) -> None:
    assert "https://kuberth.example.com" in own_origins(_request("x:1"), public_url)


def test_a_malformed_public_url_adds_nothing() -> None:
    assert own_origins(_request("kuberth:8000"), "not a url") == {"http://kuberth:8000"}
