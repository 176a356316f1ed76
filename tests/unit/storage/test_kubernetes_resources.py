"""Writes Kubernetes could not decode name the field, as a 422 like any other bad value."""

from __future__ import annotations

from kuberth.exceptions import BadRequestError, InvalidInputError
from kuberth.storage.kubernetes.resources import undecodable_field_error

DECODE = (
    'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string '
    "into Go struct field DeploymentSpec.spec.replicas of type int32"
)


def test_an_undecodable_body_is_a_422_at_the_field() -> None:
    error = undecodable_field_error(BadRequestError(DECODE))
    assert isinstance(error, InvalidInputError)
    assert error.field == "spec.replicas"
    assert error.message == DECODE


def test_an_undecodable_merge_patch_is_a_422_at_the_field_not_at_patch() -> None:
    message = f' "" is invalid: patch: Invalid value: "{{...}}": {DECODE.split(": ", 1)[1]}'
    error = undecodable_field_error(InvalidInputError(message, field="patch"))
    assert error.field == "spec.replicas"


def test_nested_fields_keep_their_path() -> None:
    message = (
        "json: cannot unmarshal string into Go struct field "
        "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"
    )
    error = undecodable_field_error(BadRequestError(message))
    assert error.field == "spec.template.spec.containers.ports.containerPort"


def test_other_errors_are_left_alone() -> None:
    too_large = BadRequestError("Request entity too large: limit is 3145728")
    assert undecodable_field_error(too_large) is too_large
    named = BadRequestError(DECODE, field="spec")
    assert undecodable_field_error(named) is named
    invalid = InvalidInputError("spec.replicas: Invalid value", field="spec.replicas")
    assert undecodable_field_error(invalid) is invalid
