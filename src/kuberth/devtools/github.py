"""A local GitHub-compatible sign-in server, for development and tests only.

It speaks the parts of GitHub that Kuberth uses: the OAuth web flow (authorize page, code, token
exchange with PKCE) and the REST calls sign-in makes (``/user``, org and team membership), with the
REST API under ``/api/v3`` as on GitHub Enterprise. On the authorize page you choose who you are.
Membership is also answered for an operator's token (:meth:`GitHubStandIn.membership_token`, as
``KUBERTH_SIGNUP_MEMBERSHIP_TOKEN``) from what each login last chose, and a test can take a
login out of an org or team (:meth:`GitHubStandIn.leave`) or make those calls fail (``outage``).
`kuberth serve` never starts it; `kuberth dev` and the tests do.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated, Self
from urllib.parse import urlencode

import uvicorn
from fastapi import FastAPI, Form, Header, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

CODE_LIFETIME = 600.0


@dataclass
class StandInUser:
    id: int
    login: str
    name: str | None = None
    orgs: set[str] = field(default_factory=set)
    teams: set[str] = field(default_factory=set)  # "org/team-slug"


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scope: str
    user: StandInUser
    expires: float


@dataclass
class GitHubStandIn:
    """The server's state: one registered OAuth app, issued codes and tokens."""

    client_id: str = field(default_factory=lambda: "dev-" + secrets.token_hex(8))
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: set[str] = field(default_factory=set)
    codes: dict[str, _Grant] = field(default_factory=dict)
    tokens: dict[str, tuple[StandInUser, str]] = field(default_factory=dict)
    token_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: What ``/user`` answers for a user id instead of the true record, as raw bytes: a GitHub
    #: that misbehaves, for the tests of what Kuberth accepts as an identity.
    user_answers: dict[int, bytes] = field(default_factory=dict)
    #: Every login's orgs and teams, as chosen at its last authorization (lower-cased login).
    members: dict[str, StandInUser] = field(default_factory=dict)
    #: Tokens that may read any org's and team's members (an org owner's, with read:org).
    membership_tokens: set[str] = field(default_factory=set)
    #: When set, the membership calls answer 503 (GitHub having a bad day).
    outage: bool = False

    def app(self) -> FastAPI:
        return _make_app(self)

    def membership_token(self) -> str:
        token = "ghp_" + secrets.token_urlsafe(24)
        with self.lock:
            self.membership_tokens.add(token)
        return token

    def leave(self, login: str, *, org: str | None = None, team: str | None = None) -> None:
        """Take a login out of an org (and its teams) or one team (``org/slug``)."""
        with self.lock:
            user = self.members[login.lower()]
            if org is not None:
                user.orgs.discard(org)
                user.teams = {t for t in user.teams if not t.startswith(f"{org}/")}
            if team is not None:
                user.teams.discard(team)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in (development GitHub)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin-top:1rem}}input{{width:100%;padding:.4rem;font-size:1rem}}
button{{margin-top:1.5rem;padding:.5rem 1rem;font-size:1rem}}
.note{{background:#fff4ce;padding:.6rem;border-radius:.3rem}}</style></head>
<body><h1>Development GitHub</h1>
<p class="note">This is Kuberth's local stand-in for GitHub, for development only. Choose who you
are; <strong>{client_id}</strong> asks for <code>{scope}</code>.</p>
<form method="post" action="/login/oauth/authorize">
{hidden}
<label for="login">GitHub login</label><input id="login" name="login" required value="octocat">
<label for="user_id">Numeric GitHub id</label>
<input id="user_id" name="user_id" type="number" min="1" required value="{suggested_id}">
<label for="name">Name (optional)</label><input id="name" name="name">
<label for="orgs">Organisations, comma-separated (optional)</label><input id="orgs" name="orgs">
<label for="teams">Teams as org/team, comma-separated (optional)</label>
<input id="teams" name="teams">
<button type="submit">Authorize</button></form></body></html>"""


def _split(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def _make_app(server: GitHubStandIn) -> FastAPI:
    app = FastAPI(title="GitHub stand-in (development only)", docs_url=None, redoc_url=None)

    def _bad_client(client_id: str, redirect_uri: str) -> str | None:
        if client_id != server.client_id:
            return "unknown client_id"
        if server.redirect_uris and redirect_uri not in server.redirect_uris:
            return "redirect_uri does not match the registered one"
        return None

    @app.get("/login/oauth/authorize", response_class=HTMLResponse)
    def authorize_page(request: Request) -> HTMLResponse:
        query = dict(request.query_params)
        client_id = query.get("client_id", "")
        if problem := _bad_client(client_id, query.get("redirect_uri", "")):
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", status_code=400)
        keep = (
            "client_id",
            "redirect_uri",
            "state",
            "scope",
            "code_challenge",
            "code_challenge_method",
        )
        hidden = "\n".join(
            f'<input type="hidden" name="{k}" value="{html.escape(query[k])}">'
            for k in keep
            if k in query
        )
        page = _PAGE.format(
            client_id=html.escape(client_id),
            scope=html.escape(query.get("scope", "")),
            hidden=hidden,
            suggested_id=583231,
        )
        return HTMLResponse(page)

    @app.post("/login/oauth/authorize")
    def authorize(
        client_id: Annotated[str, Form()],
        redirect_uri: Annotated[str, Form()],
        login: Annotated[str, Form()],
        user_id: Annotated[int, Form(gt=0)],
        state: Annotated[str, Form()] = "",
        scope: Annotated[str, Form()] = "",
        code_challenge: Annotated[str | None, Form()] = None,
        code_challenge_method: Annotated[str | None, Form()] = None,
        name: Annotated[str, Form()] = "",
        orgs: Annotated[str, Form()] = "",
        teams: Annotated[str, Form()] = "",
    ) -> Response:
        if problem := _bad_client(client_id, redirect_uri):
            return HTMLResponse(f"<p>{html.escape(problem)}</p>", status_code=400)
        if code_challenge and code_challenge_method != "S256":
            return HTMLResponse("<p>only S256 code challenges</p>", status_code=400)
        user = StandInUser(user_id, login, name or None, _split(orgs), _split(teams))
        code = secrets.token_urlsafe(16)
        with server.lock:
            server.members[login.lower()] = user
            server.codes[code] = _Grant(
                client_id,
                redirect_uri,
                code_challenge,
                scope,
                user,
                time.monotonic() + CODE_LIFETIME,
            )
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(
            f"{redirect_uri}{separator}{urlencode({'code': code, 'state': state})}", status_code=302
        )

    @app.post("/login/oauth/access_token")
    def access_token(
        client_id: Annotated[str, Form()],
        code: Annotated[str, Form()],
        client_secret: Annotated[str, Form()] = "",
        redirect_uri: Annotated[str, Form()] = "",
        code_verifier: Annotated[str, Form()] = "",
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        # GitHub answers token errors with 200 and an "error" field; so does this.
        with server.lock:
            server.token_requests += 1
            grant = server.codes.pop(code, None)  # a code works once
        if authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, client_secret = decoded.partition(":")
        if grant is None or grant.expires < time.monotonic():
            return JSONResponse({"error": "bad_verification_code"})
        if client_id != grant.client_id or client_secret != server.client_secret:
            return JSONResponse({"error": "incorrect_client_credentials"})
        if redirect_uri and redirect_uri != grant.redirect_uri:
            return JSONResponse({"error": "redirect_uri_mismatch"})
        if grant.code_challenge and _s256(code_verifier) != grant.code_challenge:
            return JSONResponse({"error": "bad_verification_code", "error_description": "PKCE"})
        token = "gho_" + secrets.token_urlsafe(24)
        with server.lock:
            server.tokens[token] = (grant.user, grant.scope)
        return JSONResponse({"access_token": token, "token_type": "bearer", "scope": grant.scope})

    def _user(authorization: str | None) -> tuple[StandInUser, str] | None:
        if not authorization:
            return None
        token = authorization.split(" ", 1)[-1]
        return server.tokens.get(token)

    @app.get("/api/v3/user")
    def user(authorization: Annotated[str | None, Header()] = None) -> Response:
        found = _user(authorization)
        if found is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        who, _ = found
        if who.id in server.user_answers:
            return Response(server.user_answers[who.id], media_type="application/json")
        return JSONResponse({"id": who.id, "login": who.login, "name": who.name, "type": "User"})

    def _listed(login: str) -> StandInUser | None:
        with server.lock:
            return server.members.get(login.lower())

    @app.get("/api/v3/orgs/{org}/members/{login}")
    def org_member(
        org: str, login: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        if server.outage:
            return JSONResponse({"message": "Service unavailable"}, status_code=503)
        token = (authorization or "").split(" ", 1)[-1]
        if token in server.membership_tokens:
            listed = _listed(login)
            return Response(status_code=204 if listed and org in listed.orgs else 404)
        found = _user(authorization)
        if found is None:
            return JSONResponse({"message": "Bad credentials"}, status_code=401)
        who, scope = found
        if "read:org" not in scope.replace(",", " ").split():
            return JSONResponse({"message": "Missing read:org"}, status_code=403)
        member = who.login.lower() == login.lower() and org in who.orgs
        return Response(status_code=204 if member else 404)

    @app.get("/api/v3/orgs/{org}/teams/{team}/memberships/{login}")
    def team_member(
        org: str, team: str, login: str, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        if server.outage:
            return JSONResponse({"message": "Service unavailable"}, status_code=503)
        token = (authorization or "").split(" ", 1)[-1]
        if token in server.membership_tokens:
            who: StandInUser | None = _listed(login)
        else:
            found = _user(authorization)
            if found is None:
                return JSONResponse({"message": "Bad credentials"}, status_code=401)
            who = found[0] if found[0].login.lower() == login.lower() else None
        if who is not None and f"{org}/{team}" in who.teams:
            return JSONResponse({"state": "active", "role": "member"})
        return JSONResponse({"message": "Not Found"}, status_code=404)

    return app


class ThreadedServer:
    """Runs an ASGI app with uvicorn on 127.0.0.1 in a background thread (dev tool and tests)."""

    def __init__(self, app: FastAPI, *, port: int, log_level: str = "warning") -> None:
        self.port = port
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Serve, once the app's start-up has finished; a server that fails to start is stopped.

        Raises:
            RuntimeError: the app did not finish starting within ``timeout`` seconds, or failed.
        """
        self._thread.start()
        # uvicorn offers no start-up event to wait on; check its flag until it is listening.
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class StandInServer(ThreadedServer):
    """The GitHub stand-in, served; its REST API is under /api/v3 as on GitHub Enterprise."""

    def __init__(self, state: GitHubStandIn, *, port: int) -> None:
        super().__init__(state.app(), port=port)
        self.state = state

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v3"
