"""FastAPI dependencies: the per-process services and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kuberth.http import csrf
from kuberth.http.fairness import fairness, tenant_key
from kuberth.http.logs import bind_user
from kuberth.http.services import Services
from kuberth.services.principal import Principal

#: The key in the signed cookie that holds the session's secret (its digest is in the database:
#: the server can end a session; the cookie alone proves nothing once it has).
SESSION_KEY = "sid"


async def _services(request: Request) -> Services:
    """Async although it awaits nothing: FastAPI runs a plain ``def`` dependency in a worker
    thread, a hand-off (and back) on every request for one attribute read."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(_services)]

_bearer = HTTPBearer(auto_error=False, description="A personal API token (kbt_...)")


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from a Bearer token or else the session cookie, within the API's rate limit.

    The limit is taken here, in the one dependency every API route has, rather than in a
    dependency of its own: FastAPI solves a dependency's whole tree again wherever it is named,
    and that solving was a fifth of a small request's CPU. A token of the credential's bucket is
    spent before the database is asked who it is, one of the user's after (see
    :class:`~kuberth.http.fairness.RateLimiter`); a request without credentials is answered 401
    and never counted against a user.

    A write the cookie authenticates must also show it comes from Kuberth's own pages (see
    :mod:`kuberth.http.csrf`): a browser sends the cookie whichever site made the request.
    Identity headers a client sends (Impersonate-*, X-Forwarded-User, ...) are never read.
    On the event loop: the database is asked without a worker thread.
    """
    services: Services = request.app.state.services
    rate = fairness(request).rate
    if credentials is None:
        secret = request.session.get(SESSION_KEY)
        rate.take_credential(secret if isinstance(secret, str) else None)
        principal = await session_principal(request, services)
        request.state.by_cookie = True
        csrf.check_cookie_write(request, services.settings.public_url)
    else:
        rate.take_credential(credentials.credentials)
        principal = await services.users.afrom_token(credentials.credentials)
        bind_user(principal.github_id)  # the rest of the request's log records name the caller
    rate.take(tenant_key(principal.github_id))
    return principal


async def session_principal(request: Request, services: Services) -> Principal:
    """The user of the session cookie: the API's caller when no token is sent, and the pages'
    only one (their page-flavoured wrapper sends a signed-out visitor to sign in instead; pages
    are not rate-limited).

    Raises:
        UnauthenticatedError: no session, an ended or idle one.
        ForbiddenError: the user was revoked, or no longer passes the sign-up rules.
    """
    principal = await services.users.afrom_session(
        request.session.get("user_id"), request.session.get(SESSION_KEY)
    )
    bind_user(principal.github_id)  # the rest of the request's log records name the caller
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def authenticated_by_cookie(request: Request) -> bool:
    """Whether this request's caller (resolved by CurrentPrincipal) came from the session cookie."""
    return bool(getattr(request.state, "by_cookie", False))


#: Lists that grow with the number of tenants come a page at a time.
PageOffset = Annotated[int, Query(ge=0, description="How many items to skip")]
PageLimit = Annotated[int, Query(ge=1, le=500, description="How many items at most")]

#: A database row's id in a path: within the columns' range, or a 422 (not the database's error).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
