"""A service error is shown at the form field it is about."""

from __future__ import annotations

import pytest

from kuberth.exceptions import InvalidInputError
from kuberth.http.pages.forms import field_errors

SERVICE_FORM = {"name", "app", "port", "target_port", "ports", "paths"}


@pytest.mark.parametrize(
    ("field", "shown_at"),
    [
        ("name", "name"),
        ("ports.0.target_port", "target_port"),
        ("ports.0.port", "port"),
        ("ports", "ports"),  # the list as a whole: the caller moves it to the first field
        ("metadata.name", "_"),
        ("spec.ports[0].port", "_"),
        (None, "_"),
    ],
)
def test_nested_list_errors_are_shown_at_the_flattened_field(
    field: str | None, shown_at: str
) -> None:
    error = InvalidInputError("bad", field=field)
    assert field_errors(error, SERVICE_FORM, nested=("ports", "paths")) == {shown_at: "bad"}


def test_without_nesting_the_first_part_decides() -> None:
    """An app's env.0.name error belongs at env, not at the app's name."""
    error = InvalidInputError("bad", field="env.0.name")
    assert field_errors(error, {"name", "env"}) == {"env": "bad"}
