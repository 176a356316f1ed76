"""Names in request paths, and pydantic's errors as 422s that name the concise field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kuberth.exceptions import NotFoundError
from kuberth.services.specs import DeploymentSpec
from kuberth.services.workloads import invalid, require_valid_name


@pytest.mark.parametrize("name", ["web", "web-1", "a.b"])
def test_valid_path_names_pass(name: str) -> None:
    require_valid_name("deployment", name)


@pytest.mark.parametrize("name", [".", "..", "Web", "a b", "a?b=c", "wéb", "web\n", "x" * 254, ""])
def test_invalid_path_names_are_not_found(name: str) -> None:
    """No object can have such a name; `.` and `..` must never reach a Kubernetes URL."""
    with pytest.raises(NotFoundError, match="not found"):
        require_valid_name("deployment", name)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Web", "image": "x"}, "name"),
        ({"name": "w", "image": "x", "env": {"1BAD": "v"}}, "env.0.name"),
        (
            {"name": "w", "image": "x", "resources": {"requests": {"gpu": "1"}}},
            "resources.requests.gpu",
        ),
    ],
)
def test_validation_errors_name_the_field_as_the_client_wrote_it(
    body: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        DeploymentSpec.model_validate(body)
    error = invalid(raised.value)
    assert error.field == field
    assert error.message.startswith(f"{field}: ")
