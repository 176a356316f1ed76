"""After sign-in, Kuberth redirects only to same-site relative paths."""

from __future__ import annotations

import pytest

from kuberth.http.routes.auth import DEFAULT_NEXT, safe_next


@pytest.mark.parametrize("target", ["/", "/api/v1/me", "/namespaces/alice?tab=apps"])
def test_relative_paths_are_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/x\r\nSet-Cookie: a=b",
        "evil.example/path",
    ],
)
def test_anything_else_goes_to_the_default(target: str | None) -> None:
    assert safe_next(target) == DEFAULT_NEXT
