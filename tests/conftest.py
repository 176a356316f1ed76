"""Options shared by every test: which tests are integration tests, keeping namespaces."""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION = Path(__file__).parent / "integration"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--keep-namespaces",
        action="store_true",
        default=False,
        help="Leave each test's namespace behind for debugging (they carry kuberth.dev/test=true).",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
