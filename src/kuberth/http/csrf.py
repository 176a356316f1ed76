"""Cross-site request forgery: what proves a cookie-authenticated write comes from Kuberth itself.

A browser attaches the session cookie to any request to Kuberth, whichever page made it, and
SameSite=Lax does not stop a *same-site* page (an app on the apps domain may share Kuberth's
site). So every write the cookie authenticates must show it comes from Kuberth's own pages:

* forms (the pages) carry the session's token in the hidden field ``csrf``;
* the API wants the same token in the header ``X-CSRF-Token`` (a form cannot send a header, and a
  cross-origin script cannot send one without a CORS preflight that Kuberth never grants), and,
  when the browser says where the request comes from (``Sec-Fetch-Site``, ``Origin``), that this
  is Kuberth's own origin.

A Bearer token is never sent by a browser on its own, so calls authenticated by one need none of it.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from kuberth.exceptions import CrossSiteRequestError

#: The session key of the per-session token, shared by the pages' forms and the API's header.
SESSION_KEY = "csrf"
#: The header an API client echoes the token in.
HEADER = "X-CSRF-Token"
#: Methods that change nothing, by HTTP's definition (and Kuberth's routes).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: ``Sec-Fetch-Site`` values that are not another site's or origin's doing ("none": the user's own
#: navigation, typed or bookmarked).
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def session_token(request: Request) -> str:
    """The session's token, made on first use (it lives as long as the session)."""
    token = request.session.get(SESSION_KEY)
    if not token:
        token = request.session[SESSION_KEY] = secrets.token_urlsafe(32)
    return str(token)


def matches_session(request: Request, sent: str | None) -> bool:
    """Whether ``sent`` is the session's token (compared in constant time)."""
    expected = request.session.get(SESSION_KEY)
    if not sent or not isinstance(expected, str) or not expected:
        return False
    return secrets.compare_digest(sent.encode(), expected.encode())


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` as a browser writes it in ``Origin`` (no default port), or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6, bracketed again
        host = f"[{host}]"
    return (
        f"{scheme}://{host}"
        if port in (None, _DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def own_origins(request: Request, public_url: str) -> set[str]:
    """Kuberth's origin: the public URL's, and the one the request was sent to.

    The second covers development and a proxy that keeps the Host header; it cannot be forged
    from a browser, which sets ``Host`` to where the request goes and ``Origin`` to where it
    comes from.
    """
    own = {_origin(public_url), _origin(f"{request.url.scheme}://{request.url.netloc}")}
    return {origin for origin in own if origin}


def check_cookie_write(request: Request, public_url: str) -> None:
    """Refuse an unsafe request authenticated by the session cookie unless it comes from Kuberth.

    Raises:
        CrossSiteRequestError: another site's request by its ``Sec-Fetch-Site`` or ``Origin``,
            or without the session's token in ``X-CSRF-Token``.
    """
    if request.method.upper() in SAFE_METHODS:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in _OWN_FETCH_SITES:
        raise CrossSiteRequestError(
            f"Sec-Fetch-Site is {fetch_site!r}: a write signed in by the session cookie must come "
            "from Kuberth's own pages (scripts: use an API token)",
            field="Sec-Fetch-Site",
        )
    origin = request.headers.get("origin")
    if origin is not None:
        own = own_origins(request, public_url)
        if _origin(origin) not in own:
            raise CrossSiteRequestError(
                f"Origin {origin!r} is not Kuberth's ({', '.join(sorted(own))}): a write signed in "
                "by the session cookie must come from Kuberth's own pages",
                field="Origin",
            )
    sent = request.headers.get(HEADER)
    if not sent:
        raise CrossSiteRequestError(
            f"a write signed in by the session cookie needs the {HEADER} header, the session's "
            "token from GET /api/v1/me (csrf_token); or use an API token (Authorization: Bearer)",
            field=HEADER,
        )
    if not matches_session(request, sent):
        raise CrossSiteRequestError(
            f"{HEADER} is not this session's token (GET /api/v1/me gives it as csrf_token)",
            field=HEADER,
        )
