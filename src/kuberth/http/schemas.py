"""Request and response bodies of the JSON API."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kuberth.services.specs import DnsLabel


class QuotaUsage(BaseModel):
    hard: str
    used: str | None = Field(description="null until the quota controller has counted")


class Namespace(BaseModel):
    """A namespace of the caller's. Phase, conditions and quota come with GET of one namespace."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    personal: bool
    owner_id: int
    phase: str | None = None
    conditions: list[dict[str, Any]] = []
    finalizers: list[str] = []
    quota: dict[str, QuotaUsage] = {}
    created_at: str | None = None


class NamespaceList(BaseModel):
    #: How many there are in all; ``items`` is the page from ``offset``.
    total: int
    offset: int
    items: list[Namespace]


class NamespaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DnsLabel = Field(description="`<your personal namespace>-<suffix>`")


class DeletionPending(BaseModel):
    """The namespace is still terminating: what is it waiting for."""

    status: str = "terminating"
    namespace: Namespace


class Me(BaseModel):
    github_id: int
    login: str
    name: str | None
    is_admin: bool
    namespaces: list[Namespace]
    csrf_token: str | None = Field(
        default=None,
        description=(
            "Signed in by the session cookie: the token to send as the X-CSRF-Token header on "
            "every POST, PUT, PATCH and DELETE. Null for an API token, which needs none."
        ),
    )


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What the token is for")
    expires_in_days: int | None = Field(default=90, ge=1, le=366, description="null: never")


class Token(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    last_used_at: datetime.datetime | None


class TokenCreated(Token):
    token: str = Field(description="The token itself. Shown this once; only its hash is kept.")


class TokenList(BaseModel):
    items: list[Token]


class ObjectSummary(BaseModel):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = {}
    resource_version: str | None = None
    created_at: str | None = None
    object: dict[str, Any] | None = Field(default=None, description="With ?full=true: the object")


class Replicas(BaseModel):
    desired: int
    updated: int
    ready: int
    available: int


class Pod(BaseModel):
    name: str
    phase: str | None
    ready: bool
    restarts: int
    node: str | None
    ip: str | None


class Event(BaseModel):
    type: str | None
    reason: str | None
    message: str | None
    object: str
    count: int | None
    last_seen: str | None


class Problem(BaseModel):
    """Why pods do not run, in plain words, from their states, the events and the Deployment."""

    reason: str = Field(
        description="A short code: ImagePull, PodSecurity, QuotaExceeded, FailedCreate, "
        "CrashLoop, RunsAsRoot, CannotStart, Unschedulable, NotReady"
    )
    message: str = Field(description="What is wrong, in a sentence")
    pods: list[str] = Field(default=[], description="The pods it concerns (none: the Deployment)")


class Deployment(ObjectSummary):
    images: list[str | None]
    replicas: Replicas
    conditions: list[dict[str, Any]] = []
    rolled_out: bool
    pods: list[Pod] | None = Field(default=None, description="GET of one with include=pods")
    events: list[Event] | None = Field(default=None, description="GET of one with include=events")
    problems: list[Problem] | None = Field(
        default=None,
        description="GET of one with include=problems: why its pods do not run (empty: nothing "
        "is wrong)",
    )


class ServicePortSummary(BaseModel):
    name: str | None
    port: int | None
    target_port: int | str | None
    protocol: str


class Service(ObjectSummary):
    type: str
    cluster_ip: str | None
    selector: dict[str, str] = {}
    ports: list[ServicePortSummary]
    endpoints: list[str] | None = Field(
        default=None, description="Ready pod addresses: GET of one with include=endpoints"
    )


class IngressBackend(BaseModel):
    host: str | None
    path: str
    service: str | None
    port: int | str | None


class Ingress(ObjectSummary):
    ingress_class: str | None
    hosts: list[str]
    backends: list[IngressBackend]
    tls: list[dict[str, Any]] = []


class App(BaseModel):
    name: str
    deployment: Deployment | None
    service: Service | None
    ingress: Ingress | None
    url: str | None
    problems: list[Problem] | None = Field(
        default=None,
        description="GET of one app: why its pods do not run, in plain words (empty: nothing is "
        "wrong); null in lists",
    )


class Rollout(BaseModel):
    outcome: Literal["complete", "failed", "timeout"]
    deployment: Deployment


class DeploymentList(BaseModel):
    items: list[Deployment]


class ServiceList(BaseModel):
    items: list[Service]


class IngressList(BaseModel):
    items: list[Ingress]


class AppList(BaseModel):
    items: list[App]


class WebSession(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_agent: str | None
    created_at: datetime.datetime
    last_seen_at: datetime.datetime
    #: The session this request was made with.
    current: bool


class WebSessionList(BaseModel):
    items: list[WebSession]
