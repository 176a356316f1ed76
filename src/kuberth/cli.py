"""The `kuberth` command: the server, the local control plane, and the one-command dev setup.

Everything but Typer is imported inside the commands (even the settings: pydantic-settings alone
takes longer to import than the interpreter takes to start), and help is plain text rather than
Rich's (importing Rich doubles the time of `kuberth --help`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from types import FrameType

    from kuberth.cluster.build import Binaries, NodeBinaries
    from kuberth.cluster.plane import ControlPlane
    from kuberth.settings import Settings

#: Worker threads for the synchronous endpoints (AnyIO's default is 40); long waits (rollouts,
#: deletions, log follows) take none, they wait on the event loop. The Kubernetes client keeps as
#: many connections (its CONNECTION_POOL_SIZE) so no thread waits for, or throws away, a
#: connection.
WORKER_THREADS = 64

#: Allocations (net of deallocations) between two collections of the youngest generation.
GC_YOUNG_THRESHOLD = 20_000

app = typer.Typer(
    help="Kuberth: self-service Kubernetes namespaces for GitHub users.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
cluster_app = typer.Typer(
    help="A real local control plane (etcd, kube-apiserver, controllers, scheduler, kwok) for "
    "development and tests, built from Go modules.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(cluster_app, name="cluster")

Host = Annotated[str | None, typer.Option(help="Listen address [default: KUBERTH_HOST]")]
Port = Annotated[int | None, typer.Option(help="Listen port [default: KUBERTH_PORT]")]
RealNode = Annotated[
    bool | None,
    typer.Option(
        "--real-node/--no-real-node",
        help="Start a real node (containerd, kubelet, kube-proxy) beside the kwok node "
        "[default: whenever this machine allows it]",
    ),
]


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _binaries(settings: Settings) -> Binaries:
    from kuberth.cluster.build import Builder, BuildError
    from kuberth.cluster.versions import Versions

    try:
        return Builder(cache_dir=settings.cache_dir, versions=Versions(), progress=_say).ensure()
    except BuildError as error:
        raise _fail(error) from error


def _node_binaries(settings: Settings, wanted: bool | None) -> NodeBinaries | None:
    """The real node's binaries when one is wanted and the machine allows it; otherwise None,
    after saying once why not and what the plane falls back to."""
    from kuberth.cluster.build import Builder, BuildError
    from kuberth.cluster.node import prerequisites
    from kuberth.cluster.versions import Versions

    if wanted is False:
        return None
    problems = prerequisites.missing()
    if problems:
        if wanted:
            raise _fail(RuntimeError(prerequisites.explain(problems)))
        _say(prerequisites.explain(problems))
        return None
    builder = Builder(cache_dir=settings.cache_dir, versions=Versions(), progress=_say)
    try:
        return builder.ensure_node()
    except BuildError as error:
        raise _fail(error) from error


def _plane(settings: Settings) -> ControlPlane:
    from kuberth.cluster.plane import ControlPlane

    return ControlPlane(settings.cluster_dir)


def _start_plane(settings: Settings, node: NodeBinaries | None = None) -> ControlPlane:
    from kuberth.cluster.plane import ClusterError

    binaries = _binaries(settings)
    plane = _plane(settings)
    started = time.monotonic()
    try:
        plane.up(binaries, node=node, apps_port=settings.cluster_apps_port, report=_say)
    except ClusterError as error:
        raise _fail(error) from error
    _say(f"control plane ready in {time.monotonic() - started:.1f}s")
    return plane


def _apps_url(settings: Settings, plane: ControlPlane) -> str | None:
    """Where apps answer through the real node's Ingress controller, if it runs."""
    port = plane.real_node.apps_port() if plane.real_node.exists() else None
    return None if port is None else f"http://<app>-<namespace>.{settings.apps_domain}:{port}/"


def _ingress_settings(settings: Settings) -> dict[str, object]:
    """Kuberth's ingress settings for the real node's Traefik: tenants' Ingresses get its class
    and their NetworkPolicies let its namespace in; what the operator set is kept."""
    from kuberth.cluster.node import ingress

    chosen = settings.model_fields_set
    updates: dict[str, object] = {}
    if "ingress_controller_namespace" not in chosen:
        updates["ingress_controller_namespace"] = ingress.NAMESPACE
    if "ingress_classes" not in chosen:
        updates["ingress_classes"] = [ingress.INGRESS_CLASS]
    return updates


def _exit_cleanly(signum: int, frame: object) -> NoReturn:
    """SIGTERM, re-raised by uvicorn once it has drained: a clean exit, as Kubernetes expects."""
    raise SystemExit(0)


def _serve(settings: Settings, *, patient: bool = False) -> None:
    """uvicorn.run, on a loop of our own so the worker thread limit is set before any request.

    ``patient``: a second Ctrl-C while shutting down is ignored rather than cutting the shutdown
    short (uvicorn's default skips the app's own shutdown then).
    """
    import asyncio
    import contextlib
    import gc
    import signal
    import socket

    # Importing the app allocates hundreds of thousands of objects that live as long as the
    # process: collecting garbage meanwhile only costs time (a tenth of the start-up's CPU), and
    # frozen afterwards they are left out of every later collection.
    gc.disable()
    try:
        import anyio.to_thread
        import uvicorn

        from kuberth.http.logs import configure_logging

        # Logs and shutdown: our formatter and access log instead of uvicorn's (log_config=None,
        # access_log=False), set up before the app's imports can warn; after SIGTERM, in-flight
        # requests get shutdown_timeout seconds to finish.
        configure_logging(json_lines=settings.json_logs, level=settings.log_level)
        from kuberth.http.app import create_app

        application = create_app(settings)
    finally:
        gc.enable()
    gc.freeze()
    # A request allocates a few thousand objects, most freed as it ends; at Python's default
    # (a collection every 700 allocations more than deallocations) the collector ran every few
    # requests and took about a tenth of a request's CPU. Garbage in reference cycles now waits
    # for GC_YOUNG_THRESHOLD allocations instead: a few MB at most.
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])

    config = uvicorn.Config(
        application,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=round(settings.shutdown_timeout),
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            # What the app's start-up made (services, clients, the database's engine) lives as
            # long as the process too: left out of every later collection as well.
            gc.freeze()

    class PatientServer(Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Under `uv run` a Ctrl-C arrives twice (the terminal's and uv's forwarded copy). The
            # first starts a graceful shutdown; uvicorn would take the second as "force exit":
            # skip the app's own shutdown (reconciler, clients) and log a traceback at the end.
            if not self.should_exit:
                super().handle_exit(sig, frame)

    server = (PatientServer if patient else Server)(config)

    async def serve() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = WORKER_THREADS
        await server.serve()

    # uvicorn re-raises the signal it handled once it has drained the requests in flight. A
    # SIGTERM (how Kubernetes stops a pod) then ends the process cleanly, with status 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # uvicorn re-raises the Ctrl-C it handled gracefully once the server has stopped.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=config.get_loop_factory()) as runner,
    ):
        runner.run(serve())
    if not server.started:
        raise typer.Exit(code=3)  # as uvicorn.run: the start-up failed (it logged why)


@app.command()
def serve(host: Host = None, port: Port = None) -> None:
    """Run the Kuberth server against the configured cluster (kubeconfig or in-cluster)."""
    from kuberth.settings import get_settings

    settings = get_settings()
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    _serve(settings.model_copy(update=overrides))


@app.command()
def dev(host: Host = None, port: Port = None, real_node: RealNode = None) -> None:
    """Local control plane + development GitHub + server: sign in and deploy on this machine."""
    import contextlib
    import os
    import secrets
    import signal

    from pydantic import SecretStr

    from kuberth.cluster.plane import free_port
    from kuberth.devtools.github import GitHubStandIn, StandInServer
    from kuberth.settings import get_settings

    settings = get_settings()
    overrides: dict[str, object] = {k: v for k, v in {"host": host, "port": port}.items() if v}
    settings = settings.model_copy(update=overrides)
    public_url = f"http://{settings.host}:{settings.port}"

    plane = _plane(settings)
    owned = not plane.is_running()
    node = _node_binaries(settings, real_node if owned else plane.real_node.exists())
    if owned:
        # On failure or Ctrl-C, `up` stops what it started.
        plane = _start_plane(settings, node)
    github: StandInServer | None = None
    # From here on, whatever ends the command (Ctrl-C before the server takes it over, the
    # stand-in failing to start) stops what it started.
    try:
        if owned:
            plane.report_crashes(
                lambda message: typer.secho(message, err=True, fg=typer.colors.RED)
            )
        else:
            _say(f"using the control plane already running from {settings.cluster_dir}")

        github = StandInServer(
            GitHubStandIn(redirect_uris={f"{public_url}/auth/github/callback"}), port=free_port()
        )
        github.start()
        rules = settings.signup_logins or settings.signup_orgs or settings.signup_teams
        dev_settings = settings.model_copy(
            update={
                "environment": "development",
                "kubeconfig": plane.kubeconfig,
                "public_url": public_url,
                "github_url": github.url,
                "github_api_url": github.api_url,
                "github_client_id": github.state.client_id,
                "github_client_secret": SecretStr(github.state.client_secret),
                "signup_anyone": settings.signup_anyone or not rules,
                "secret_key": settings.secret_key or SecretStr(secrets.token_urlsafe(32)),
            }
        )
        if not settings.admission_webhook_url:
            # The Ingress host webhook, on loopback: the local API server runs on this machine.
            webhook_port = free_port()
            dev_settings = dev_settings.model_copy(
                update={
                    "admission_webhook_url": f"https://127.0.0.1:{webhook_port}",
                    "admission_listen_host": "127.0.0.1",
                    "admission_listen_port": webhook_port,
                }
            )
        if node is not None and plane.real_node.exists():
            dev_settings = dev_settings.model_copy(update=_real_node_settings(settings, node))
        apps_url = _apps_url(settings, plane)
        if apps_url is not None:
            dev_settings = dev_settings.model_copy(update=_ingress_settings(settings))
            if "app_url_template" not in settings.model_fields_set:
                port = plane.real_node.apps_port()
                dev_settings.app_url_template = f"http://{{host}}:{port}/"
        if "KUBERTH_DATABASE_URL" not in os.environ:
            # The database lives and dies with the plane it describes.
            dev_settings.database_url = f"sqlite:///{settings.cluster_dir}/kuberth.db"
        _say(
            f"\nKuberth (development) on {public_url}\n"
            f"  open:     {public_url}/  (sign in with a local stand-in for GitHub: any login)\n"
            f"  API docs: {public_url}/docs\n"
            f"  kubectl:  KUBECONFIG={plane.kubeconfig}\n"
            + (f"  apps:     {apps_url}\n" if apps_url else "")
        )
        _serve(dev_settings, patient=True)
    finally:
        # Ctrl-C reaches us twice under `uv run` (the terminal's and uv's forwarded copy): the
        # first stops the server, and a second must not cut the shutdown of the rest short.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if github is not None:
                with contextlib.suppress(RuntimeError):  # interrupted before its thread started
                    github.stop()
            if owned:
                _say("stopping the control plane")
                plane.down()
        finally:
            signal.signal(signal.SIGINT, previous)


def _real_node_settings(settings: Settings, node: NodeBinaries) -> dict[str, object]:
    """What `kuberth dev` changes when a real node runs: tenants' pods go there (not to the kwok
    node), and the forms suggest the demo web image it has (there is no registry to pull from).
    An operator's own choice in the environment wins."""
    from kuberth.cluster.node.layout import NODE_SELECTOR, TOLERATION

    update: dict[str, object] = {}
    if "tenant_node_selector" not in settings.model_fields_set:
        update |= {"tenant_node_selector": NODE_SELECTOR, "tenant_tolerations": [TOLERATION]}
    if "suggested_image" not in settings.model_fields_set:
        update["suggested_image"] = node.images["web"].reference
    return update


@cluster_app.command("build")
def cluster_build(
    node: Annotated[
        bool,
        typer.Option(
            "--node",
            help="Also build the real node's kubelet, kube-proxy and demo images "
            "(about 80 s more with a warm Go cache)",
        ),
    ] = False,
) -> None:
    """Build (or find in the cache) the control-plane binaries."""
    from kuberth.settings import get_settings

    settings = get_settings()
    binaries = _binaries(settings)
    _say(f"binaries: {binaries.kubernetes_dir}, {binaries.etcd_dir}, {binaries.kwok_dir}")
    if node:
        built = _node_binaries(settings, wanted=True)
        assert built is not None
        images = ", ".join(image.reference for image in built.images.values())
        _say(f"real node: {built.directory}; images: {images}")


AppsPort = Annotated[
    int | None,
    typer.Option(
        help="Host port (127.0.0.1) where the real node's Ingress controller serves apps; 0: any "
        "free port [default: KUBERTH_CLUSTER_APPS_PORT, 8080, or a free port if taken]",
        min=0,
        max=65535,
    ),
]


@cluster_app.command("up")
def cluster_up(real_node: RealNode = None, apps_port: AppsPort = None) -> None:
    """Start the control plane on 127.0.0.1 and write an admin kubeconfig.

    A real node starts beside the kwok node whenever this machine allows it (root and the
    Debian packages `make system-deps` installs); otherwise `up` says why, once, and runs the
    kwok node only. With a real node, Traefik serves Ingresses of class `traefik` on
    http://127.0.0.1:<apps port>.
    """
    from kuberth.settings import get_settings

    settings = get_settings()
    if apps_port is not None:
        settings = settings.model_copy(update={"cluster_apps_port": apps_port})
    plane = _plane(settings)
    if plane.is_running():
        _say(f"a control plane is already running from {settings.cluster_dir}")
    else:
        plane = _start_plane(settings, _node_binaries(settings, real_node))
    kubectl = _binaries(settings).kubectl
    if plane.real_node.exists():
        from kuberth.cluster.node.layout import LABEL, LABEL_VALUE, NODE_NAME, TAINT_KEY

        _say(
            f"real node {NODE_NAME}: pods with nodeSelector {LABEL}={LABEL_VALUE} and a "
            f"toleration of {TAINT_KEY} really run there (demo images: kuberth.local/*)"
        )
    apps = ""
    if (apps_url := _apps_url(settings, plane)) is not None:
        from kuberth.cluster.node import ingress

        _say(
            f"Ingress controller: Traefik in namespace {ingress.NAMESPACE}, serving Ingresses "
            f"of class {ingress.INGRESS_CLASS}"
        )
        apps = f"apps: {apps_url}  (*.localhost is 127.0.0.1)\n"
    typer.echo(
        f"\nexport KUBECONFIG={plane.kubeconfig}\n"
        f"{kubectl} get nodes\n"
        f"{apps}\n"
        "Stop it with: kuberth cluster down"
    )


@cluster_app.command("status")
def cluster_status() -> None:
    """Report each component of the control plane; exit 1 if any is not healthy."""
    from kuberth.settings import get_settings

    components = _plane(get_settings()).status()
    if not components:
        typer.echo("no control plane is running")
        raise typer.Exit(code=1)
    for component in components:
        typer.echo(f"{component.name:<24} pid {component.pid:<8} {component.state:<10} ", nl=False)
        if component.state == "crashed":
            typer.echo(f"\n--- last lines of its log ---\n{component.detail}\n---")
        else:
            typer.echo(component.detail)
    if any(c.state != "healthy" for c in components):
        raise typer.Exit(code=1)


@cluster_app.command("down")
def cluster_down() -> None:
    """Stop every process of the control plane and remove its state."""
    from kuberth.settings import get_settings

    stopped = _plane(get_settings()).down()
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def main() -> None:
    app()
