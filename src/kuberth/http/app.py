"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

import kuberth
from kuberth.exceptions import KuberthError
from kuberth.http.admission import AdmissionServer
from kuberth.http.body_limit import BodyLimitMiddleware
from kuberth.http.errors import install_error_handlers
from kuberth.http.fairness import Fairness, LongWaits, RateLimiter
from kuberth.http.observability import install_metrics
from kuberth.http.pages import install_pages
from kuberth.http.routes import (
    admin,
    apps,
    audit,
    auth,
    health,
    kubeconfig,
    logs,
    me,
    namespaces,
    sessions,
    tokens,
    workloads,
)
from kuberth.http.routing import adopt
from kuberth.http.services import Services, build_services
from kuberth.settings import Settings

if TYPE_CHECKING:
    from authlib.integrations.starlette_client import OAuth

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024

SESSION_COOKIE = "kuberth_session"

#: The API's routers, and the sign-in and health checks', in the order they are matched: the
#: tenants' most frequent calls (workloads, namespaces, apps, logs) first. No two of them answer
#: the same request (a unit test checks), so the order changes nothing else.
ROUTERS = (
    workloads.router,
    namespaces.router,
    apps.router,
    logs.router,
    health.router,
    auth.router,
    me.router,
    kubeconfig.router,
    tokens.router,
    sessions.router,
    audit.router,
    admin.router,
)
SESSION_MAX_AGE = 14 * 24 * 3600


def _oauth(settings: Settings, *, org_scope: bool) -> OAuth:
    """The GitHub OAuth client. Made at the first sign-in: importing authlib and httpx, with the
    TLS contexts of the GitHub clients, was about a tenth of start-up's CPU (0.12-0.15 of
    1.3-1.4 s), and /readyz needs none of it."""
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    github = settings.github_url.rstrip("/")
    oauth.register(
        "github",
        client_id=settings.github_client_id,
        client_secret=settings.github_client_secret.get_secret_value(),
        authorize_url=f"{github}/login/oauth/authorize",
        access_token_url=f"{github}/login/oauth/access_token",
        client_kwargs={
            "scope": "read:user read:org" if org_scope else "read:user",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_post",
        },
    )
    return oauth


def _start_admission(services: Services, settings: Settings) -> AdmissionServer | None:
    """Serve the admission webhook and register it, when the settings give it a URL.

    Turned off, an earlier registration is left in place (Kuberth may not delete it): an operator
    removes it with ``kubectl delete validatingwebhookconfiguration kuberth-ingress-hosts``.
    """
    if not settings.admission_webhook_url:
        return None
    services.workloads.hosts.start()
    host = urlsplit(settings.admission_webhook_url).hostname or ""
    tls = services.webhook.certificates(host)
    server = AdmissionServer(
        services.admission,
        tls,
        host=settings.admission_listen_host,
        port=settings.admission_listen_port,
    )
    try:
        services.webhook.register(settings.admission_webhook_url, tls)
    except KuberthError as error:  # e.g. not allowed to: an operator may have registered it
        log.warning("could not register the admission webhook: %s", error.message)
    except BaseException:
        server.close()
        raise
    # Its socket listens from the start: a call the API server makes once the webhook is
    # registered waits in it until the loop, free again, serves it.
    server.start()
    return server


def create_app(settings: Settings) -> FastAPI:
    """Build the app; clients, the database and its migrations are set up when it starts.

    Raises:
        ValueError: outside development without a proper ``KUBERTH_SECRET_KEY``.
    """
    secret = settings.session_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.monotonic()

        def phase(done: str) -> None:
            """A slow start is found by reading which phase took the time."""
            log.info("start-up: %s (%.2f s)", done, time.monotonic() - started)

        services = build_services(settings)
        phase("database migrated, clients ready")
        app.state.services = services
        app.state.oauth = None  # made at the first sign-in (routes/auth.py)
        app.state.make_oauth = partial(_oauth, settings, org_scope=services.signup.needs_org_scope)
        if services.signup.needs_org_scope and services.membership is None:
            log.warning(
                "sign-up rules name GitHub orgs or teams but KUBERTH_SIGNUP_MEMBERSHIP_TOKEN is "
                "not set: membership is checked only at sign-in (login rules are re-checked always)"
            )
        try:
            services.provisioner.ensure_cluster_objects()
        except KuberthError as error:  # e.g. the operator pre-created it and we may not change it
            log.warning(
                "could not apply the tenant ClusterRole and admission policies: %s", error.message
            )
        phase("cluster objects applied")
        # The watch-fed copies run as tasks of this event loop when first wanted.
        loop = asyncio.get_running_loop()
        for informer in services.informers:
            informer.attach(loop)
        webhook = _start_admission(services, settings)
        if webhook is not None:
            phase("admission webhook serving and registered")
        # Only the replica holding the Lease reconciles; the others stand by to take over.
        campaigning: asyncio.Task[None] | None = None
        if settings.reconcile_interval > 0:
            campaigning = asyncio.create_task(
                services.leader.campaign(
                    lead=partial(services.reconciler.run, interval=settings.reconcile_interval)
                ),
                name="kuberth-leader-election",
            )
            phase("leader election started")
        try:
            yield
        finally:
            if campaigning is not None:
                campaigning.cancel()
                # Long enough to hand the Lease back and for the reconcile pass to stop.
                await asyncio.wait(
                    {campaigning},
                    timeout=settings.lease_duration + 2 * settings.kubernetes_request_timeout,
                )
            # Each copy's watch closed before the clients are, so none ends in an error.
            await asyncio.gather(*(informer.aclose() for informer in services.informers))
            if webhook is not None:
                await webhook.stop()
            await services.aclose()

    app = FastAPI(
        title="Kuberth",
        version=kuberth.__version__,
        description=(
            "Self-service, multi-tenant Kubernetes namespaces for GitHub users. Authenticate with "
            "the session cookie set by `/auth/github/login`, or with a personal API token as "
            "`Authorization: Bearer kbt_...`. With the cookie, every POST, PUT, PATCH and DELETE "
            "needs the header `X-CSRF-Token` (the `csrf_token` of `GET /api/v1/me`) and, if the "
            "client sends `Origin` or `Sec-Fetch-Site`, Kuberth's own origin; a token needs "
            "neither. Every error has the shape `{error, message, field}`."
        ),
        lifespan=lifespan,
        # Kuberth's own observability is Prometheus (/metrics) and JSON logs carrying the request
        # id. FastAPI's native OpenTelemetry, on by default, would look for configured global
        # providers at every request (25 µs of a GET's CPU) to find there are none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    https = settings.public_url.startswith("https://")
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        # On https, the __Host- prefix: browsers keep it only if it is Secure, for path / and
        # with no Domain, so no sibling host (an app on the same site) can set or shadow it.
        session_cookie=f"__Host-{SESSION_COOKIE}" if https else SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",  # sent on the redirect back from GitHub, not on cross-site POSTs
        https_only=https,
    )
    # Well above the 1 MiB an object may have, far below what would hurt the server.
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    install_error_handlers(app)
    app.state.fairness = Fairness(
        LongWaits(per_tenant=settings.long_waits_per_tenant, total=settings.long_waits_total),
        RateLimiter(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst),
    )
    adopt(app, *ROUTERS)
    # After the API: routes are matched in order, and every API request would otherwise be
    # tried against each page's path first.
    install_pages(app)
    install_metrics(app)  # last: its middleware is the outermost, timing and logging everything
    return app
