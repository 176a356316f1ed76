"""Sign-in with GitHub (authorization code + PKCE, one-time state) and sign-out."""

from __future__ import annotations

import logging
import ssl
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from kuberth.exceptions import BadRequestError, ForbiddenError, KuberthError
from kuberth.http import csrf
from kuberth.http.dependencies import SESSION_KEY, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.routing import plain_router

log = logging.getLogger(__name__)
router = plain_router(prefix="/auth", tags=["auth"])

DEFAULT_NEXT = "/dashboard"


@cache
def _tls() -> ssl.SSLContext:
    """authlib makes a new httpx client for every login and every callback, and httpx would load
    the CA bundle into a new SSL context for each: ~25 ms of CPU on the event loop, twice per
    sign-in, which was half of Kuberth's CPU per sign-up and what capped first sign-ins at ~6/s on
    2 cores. One context, made once, serves them all (it is what httpx would make: same CAs, same
    env). Made at the first sign-in, when authlib and httpx are imported: start-up does not pay."""
    import httpx

    return httpx.create_ssl_context()


def _github(request: Request) -> Any:
    """The registered GitHub client (authlib's, untyped), its per-request clients sharing one
    TLS context; the OAuth registry is made at the first sign-in (see ``create_app``)."""
    state = request.app.state
    if state.oauth is None:
        state.oauth = state.make_oauth()
    github = state.oauth.github
    github.client_kwargs.setdefault("verify", _tls())
    return github


def safe_next(target: str | None) -> str:
    """Only same-site relative paths: "/x" yes; "//evil", "/\\\\evil", "https://evil" no."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    if any(c in target for c in "\r\n\t") or "\\" in target:
        return DEFAULT_NEXT
    return target


@router.get(
    "/github/login",
    summary="Start signing in with GitHub",
    response_class=RedirectResponse,
    status_code=302,
)
async def login(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    request.session["next"] = safe_next(next)
    redirect: Response = await _github(request).authorize_redirect(
        request, services.settings.oauth_redirect_uri
    )
    return redirect


@router.get(
    "/github/callback",
    summary="GitHub redirects here after the user authorizes Kuberth",
    response_class=RedirectResponse,
    status_code=302,
    responses=error_responses(400, 403, 503),
)
async def callback(request: Request, services: ServicesDep) -> Response:
    from authlib.integrations.base_client import OAuthError

    try:
        token = await _github(request).authorize_access_token(request)
    except OAuthError as error:
        # Missing, replayed or mismatched state; a used or forged code; a denied authorization.
        raise BadRequestError(f"sign-in failed: {error.description or error.error}") from error
    access_token = token["access_token"]
    github_user = await services.github.user(access_token)
    allowed = await services.signup.allows(github_user, token=access_token, github=services.github)
    del token, access_token  # the GitHub token is not kept past the sign-in checks
    if not allowed:
        log.info("sign-up refused for GitHub user %s (%d)", github_user.login, github_user.id)
        raise ForbiddenError(f"{github_user.login} may not sign up here")
    # Passing the rules again gives back what the rules took (not what an operator took).
    await services.review.areadmit(github_user.id)
    principal, namespace = await services.users.asign_in(github_user)
    target = safe_next(request.session.get("next"))
    request.session.clear()  # a fresh session: nothing from before sign-in carries over
    request.session["user_id"] = principal.github_id
    # Made now, not on first use: every later answer's cookie then carries the same token, so
    # concurrent requests cannot drop it from the client's cookie.
    csrf.session_token(request)
    request.session[SESSION_KEY] = await services.users.astart_session(
        principal, user_agent=request.headers.get("user-agent")
    )
    log.info("signed in %s (%d) with namespace %s", principal.login, principal.github_id, namespace)
    return RedirectResponse(target, status_code=302)


@router.post(
    "/logout",
    summary="Sign out (the session ends for every copy of its cookie)",
    description=(
        "Signed in, the request needs the session's `X-CSRF-Token` (see `GET /api/v1/me`), "
        "as every write the cookie authenticates does."
    ),
    status_code=204,
    responses=error_responses(403),
)
async def logout(request: Request, services: ServicesDep) -> Response:
    secret = request.session.get(SESSION_KEY)
    try:
        await services.users.afrom_session(request.session.get("user_id"), secret)
    except KuberthError:
        pass  # no live session: nothing another site could end, only a stale cookie to drop
    else:
        csrf.check_cookie_write(request, services.settings.public_url)
    await services.users.aend_session(secret)
    request.session.clear()
    return Response(status_code=204)
