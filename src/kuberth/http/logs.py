"""Logs: one JSON object a line (for collectors) or plain text (for people), each record carrying
the id of the request it was written in and, once known, the user's GitHub id.

The request's context lives in a context variable holding one mutable object: Starlette runs
synchronous endpoints and dependencies in worker threads with a *copy* of the context, so a value
set there would be lost, but the object they see is the same one the middleware logs with.
Nothing here reads headers or cookies; as a last guard, anything shaped like a Kuberth API token,
a bearer credential or a JWT is blanked from every message before it is written.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

#: Attributes of an access log record (``logging.info(..., extra=...)``) copied into its JSON.
ACCESS_FIELDS = ("method", "path", "route", "status", "duration_ms")

_SECRETS = re.compile(
    r"kbt_[A-Za-z0-9_\-]+"  # Kuberth API tokens
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]+=*"  # an Authorization header's value
    r"|eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"  # JWTs: service account tokens
)


def redact(text: str) -> str:
    return _SECRETS.sub("[redacted]", text)


@dataclass
class RequestContext:
    """What the records written while serving one request have in common."""

    request_id: str
    #: The request's ASGI scope: its ``session`` appears there once the cookie has been read.
    scope: MutableMapping[str, Any] = field(default_factory=dict, repr=False)
    _user_id: int | None = None

    @property
    def user_id(self) -> int | None:
        """The caller's GitHub id: as authenticated (token or cookie), else the session's."""
        if self._user_id is not None:
            return self._user_id
        session = self.scope.get("session")
        user = session.get("user_id") if isinstance(session, dict) else None
        return user if isinstance(user, int) else None


_context: ContextVar[RequestContext | None] = ContextVar("kuberth_request", default=None)


def start_request(context: RequestContext) -> Token[RequestContext | None]:
    """Make ``context`` the current request's; returns the token :func:`end_request` takes."""
    return _context.set(context)


def end_request(token: Token[RequestContext | None]) -> None:
    _context.reset(token)


def bind_user(github_id: int) -> None:
    """Name the authenticated caller in the rest of the request's records."""
    context = _context.get()
    if context is not None:
        context._user_id = github_id


def _context_fields(record: logging.LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    context = _context.get()
    if context is not None:
        entry["request_id"] = context.request_id
        if context.user_id is not None:
            entry["user_id"] = context.user_id
    for name in ACCESS_FIELDS:
        if hasattr(record, name):
            entry[name] = getattr(record, name)
    return entry


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", "user_id", ...}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_context_fields(record),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """A line for people: time, level, logger, message, then the request's fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        extra = " ".join(
            f"{key}={value}" for key, value in _context_fields(record).items() if key != "route"
        )
        return f"{line} [{extra}]" if extra else line


def configure_logging(*, json_lines: bool, level: str) -> None:
    """Send every logger's records, uvicorn's included, to stderr in one format.

    uvicorn's own access log is not used: the request middleware writes one record per request
    with the route, status, duration and request id (and never the query string, which carries
    OAuth codes on the sign-in callback).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings too, in the same format
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    if level != "debug":  # a line for every request to GitHub is noise (nothing secret: URLs)
        logging.getLogger("httpx").setLevel(logging.WARNING)
