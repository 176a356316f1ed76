"""The concise forms of Deployments, Services, Ingresses and apps, validated before Kubernetes is
called so a bad value is a 422 that names its field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from kuberth.services.naming import invalid_host_reason

DnsLabel = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        description="lower-case letters, digits and '-'; a letter or digit at each end",
    ),
]


def _not_a_bool(value: object) -> object:
    """JSON's true and false are not numbers (pydantic would read them as 1 and 0, so
    ``{"replicas": false}`` scaled an app to zero)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# Fields first, validators second: the other way round pydantic leaves the bounds out of the schema.
Port = Annotated[int, Field(ge=1, le=65535), BeforeValidator(_not_a_bool)]
Replicas = Annotated[int, Field(ge=0, le=100), BeforeValidator(_not_a_bool)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=253)]
Quantity = Annotated[
    str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$", max_length=32)
]
Image = Annotated[
    str,
    Field(
        min_length=1,
        max_length=512,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        description="A container image reference, e.g. nginx:1.27 or ghcr.io/org/app@sha256:...",
    ),
]


def _host(value: str) -> str:
    """The same rules as the pattern, with a message that says which one is broken."""
    reason = invalid_host_reason(value)
    if reason:
        raise ValueError(reason)
    return value


# The Field comes first: after a validator, pydantic leaves its pattern out of the JSON schema.
Host = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        # Labels of at most 63 characters; the last starts with a letter, as every top-level
        # domain does, which also rules out IP addresses. The schema says it all, so clients
        # (and Schemathesis) can tell a valid host from its pattern.
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
        description="A DNS name in lower case; no wildcards",
    ),
    AfterValidator(_host),
]


class _Concise(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvVar(_Concise):
    name: EnvName
    value: str = Field(default="", max_length=32768)


def _env_from_mapping(value: object) -> object:
    """`{"KEY": "value"}` is accepted as well as `[{"name": "KEY", "value": "value"}]`."""
    if isinstance(value, dict):
        return [{"name": k, "value": v} for k, v in value.items()]
    return value


#: Both forms in the OpenAPI schema too, so what the API accepts is what it documents.
_ENV_SCHEMA = {
    "anyOf": [
        {"type": "array", "items": EnvVar.model_json_schema()},
        {
            "type": "object",
            "propertyNames": EnvVar.model_json_schema()["properties"]["name"],
            "additionalProperties": {"type": "string", "maxLength": 32768},
            "description": 'As a mapping: {"KEY": "value"}',
        },
    ]
}

Env = Annotated[list[EnvVar], BeforeValidator(_env_from_mapping), WithJsonSchema(_ENV_SCHEMA)]


class Resources(_Concise):
    requests: dict[Literal["cpu", "memory"], Quantity] = {}
    limits: dict[Literal["cpu", "memory"], Quantity] = {}


class DeploymentSpec(_Concise):
    """A Deployment of one container."""

    name: DnsLabel
    image: Image
    replicas: Replicas = 1
    port: Port | None = Field(default=None, description="The container port, if it serves one")
    env: Env = []
    command: list[str] = []
    args: list[str] = []
    resources: Resources = Resources()


class ServicePort(_Concise):
    port: Port
    target_port: Port | None = Field(default=None, description="Defaults to `port`")
    name: DnsLabel | None = None
    protocol: Literal["TCP", "UDP"] = "TCP"


class ServiceSpec(_Concise):
    """A Service in front of the pods of one app (label `app=<app>`)."""

    name: DnsLabel
    app: DnsLabel = Field(description="Selects pods labelled app=<app>")
    ports: list[ServicePort] = Field(min_length=1, max_length=20)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"


#: What Kubernetes refuses in a Prefix path, checked here so the error names the concise field.
_BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F")


def _path(value: str) -> str:
    if any(part in value for part in _BAD_PATH_PARTS) or value.endswith(("/.", "/..")):
        raise ValueError(
            "must not contain '//', '/./', '/../' or '%2f', nor end with '/.' or '/..'"
        )
    return value


class IngressPath(_Concise):
    path: Annotated[str, AfterValidator(_path)] = Field(
        default="/", pattern=r"^/[A-Za-z0-9._~/%-]*$", max_length=512
    )
    service: DnsLabel
    port: Port


class IngressSpec(_Concise):
    """An Ingress for one host."""

    name: DnsLabel
    host: Host
    paths: list[IngressPath] = Field(min_length=1, max_length=50)
    tls_secret: DnsLabel | None = None
    ingress_class: str | None = None


class AppSpec(_Concise):
    """A Deployment, the Service in front of it and an Ingress, made and managed together."""

    name: DnsLabel
    image: Image
    replicas: Replicas = 1
    port: Port = Field(default=8080, description="The port the container listens on")
    env: Env = []
    host: Host | None = Field(default=None, description="Default: <app>-<namespace>.<apps domain>")


class AppUpdate(_Concise):
    """What may change in an app; what is left out stays as it is."""

    image: Image | None = None
    replicas: Replicas | None = None
    port: Port | None = None
    env: Env | None = None
    host: Host | None = None
