"""Request and response bodies of the JSON API."""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    items: list[Namespace]


class NamespaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="`<your personal namespace>-<suffix>`; a DNS label", max_length=253
    )


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
