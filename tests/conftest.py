"""Options shared by every test: which tests are integration tests, keeping namespaces, and each
test's time limit (pytest-timeout's, scaled by the suite's time factor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.timing import scaled

INTEGRATION = Path(__file__).parent / "integration"
#: One test's limit on an idle machine, fixtures included; a test that needs more says so.
TEST_TIMEOUT = 300


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
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(scaled(TEST_TIMEOUT)))
