"""What every benchmark stands on: a control plane, PostgreSQL, the GitHub stand-in, Kuberth as
its own `kuberth serve` process, tenants signed up through the real OAuth flow, /proc readings.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from kubernetes import client, config
from tests.integration.postgres import PostgresServer
from tests.integration.signin import authorize

from kuberth.cluster.build import Builder
from kuberth.cluster.plane import ControlPlane, free_port
from kuberth.cluster.versions import Versions
from kuberth.devtools.github import StandInServer
from kuberth.services.builders.tenant import OWNER_ID
from kuberth.settings import Settings


@dataclass
class Tenant:
    login: str
    github_id: int
    namespace: str
    token: str
    apps: list[str] = field(default_factory=list)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Cleanup:
    """Whether a scenario waits for the namespaces it made to be deleted before it returns, so
    that the namespace controller's work (a few namespaces a second) does not load the machine
    while the next scenario measures. Not when nothing follows on a plane of the benchmark's own:
    stopping the plane takes everything in it at once."""

    wait = True


def own_plane() -> bool:
    """Whether ``control_plane()`` starts a plane of its own (no ``KUBECONFIG`` to use)."""
    return not os.environ.get("KUBECONFIG")


@contextlib.contextmanager
def control_plane() -> Iterator[Path]:
    """The admin kubeconfig: ``KUBECONFIG``'s, or a fresh plane's (stopped afterwards)."""
    if not own_plane():
        yield Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
        return
    binaries = Builder(cache_dir=Settings().cache_dir, versions=Versions(), progress=say).ensure()
    directory = Path(tempfile.mkdtemp(prefix="kuberth-bench-plane-"))
    plane = ControlPlane(directory)
    try:
        say(f"starting a control plane in {directory}")
        yield plane.up(binaries, report=say)
    finally:
        plane.down()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server with one empty database; yields its URL."""
    directory = Path(tempfile.mkdtemp(prefix="kuberth-bench-postgres-"))
    server = PostgresServer(directory)
    try:
        server.start()
        yield server.create_database("kuberth_bench")
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def databases(prefix: str) -> Iterator[tuple[str, str]]:
    """("sqlite", URL) and then ("postgresql", URL): what a scenario runs on, one after the other.
    Each is removed once the scenario has moved on from it."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield "sqlite", f"sqlite:///{directory / 'kuberth.db'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    with postgres() as url:
        yield "postgresql", url


@dataclass
class Certificate:
    """A self-signed certificate for 127.0.0.1, and a client context that trusts it."""

    cert: Path
    key: Path
    context: ssl.SSLContext


@contextlib.contextmanager
def self_signed() -> Iterator[Certificate]:
    """A throwaway certificate (openssl, EC P-256, one day) for Kuberth's TLS; removed after."""
    directory = Path(tempfile.mkdtemp(prefix="kuberth-bench-tls-"))
    cert, key = directory / "tls.crt", directory / "tls.key"
    try:
        subprocess.run(
            [
                *(
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ),
                *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield Certificate(cert, key, ssl.create_default_context(cafile=str(cert)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def server_environment(
    kubeconfig: Path, database_url: str, port: int, scheme: str = "http"
) -> dict[str, str]:
    """KUBERTH_* variables of a production-strict `kuberth serve` on a loopback port."""
    return {
        "KUBERTH_ENVIRONMENT": "production",
        "KUBERTH_HOST": "127.0.0.1",
        "KUBERTH_PORT": str(port),
        "KUBERTH_LOG_LEVEL": "warning",
        "KUBERTH_KUBECONFIG": str(kubeconfig),
        "KUBERTH_DATABASE_URL": database_url,
        "KUBERTH_SECRET_KEY": secrets.token_urlsafe(32),
        "KUBERTH_PUBLIC_URL": f"{scheme}://127.0.0.1:{port}",
        # A benchmark's few callers send far more than a person does: it measures the server,
        # not the per-tenant rate limit (which would answer most of its requests with 429s).
        "KUBERTH_RATE_LIMIT_PER_SECOND": "0",
    }


@contextlib.contextmanager
def kuberth_server(
    kubeconfig: Path,
    database_url: str,
    github: StandInServer,
    log: Path,
    settings: dict[str, str] | None = None,
    tls: Certificate | None = None,
) -> Iterator[tuple[str, int]]:
    """Kuberth as its own process on a loopback port, production-strict; yields (url, pid).

    ``settings`` are more KUBERTH_* variables, without the prefix ({"reconcile_interval": "0"}).
    With ``tls``, it serves HTTPS with that certificate (``bench.tls_serve``).
    """
    port = free_port()
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    github.state.redirect_uris.add(f"{url}/auth/github/callback")
    env = {
        **os.environ,
        **server_environment(kubeconfig, database_url, port, scheme),
        "KUBERTH_GITHUB_URL": github.url,
        "KUBERTH_GITHUB_API_URL": github.api_url,
        "KUBERTH_GITHUB_CLIENT_ID": github.state.client_id,
        "KUBERTH_GITHUB_CLIENT_SECRET": github.state.client_secret,
        "KUBERTH_SIGNUP_ANYONE": "true",
        **{f"KUBERTH_{key.upper()}": value for key, value in (settings or {}).items()},
    }
    command = ["-m", "bench.tls_serve", str(tls.cert), str(tls.key)] if tls else []
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, *(command or ["-m", "kuberth", "serve"])],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the load test, which stops it in order
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"kuberth serve exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.TransportError):
                verify = tls.context if tls else True
                if httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"kuberth serve did not answer /healthz in 60 s; see {log}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Kuberth drains its requests), SIGKILL if it has not exited 20 s later."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def delete_namespaces(kubeconfig: Path, github_ids: set[int]) -> int:
    """Delete the namespaces of these users (without waiting); returns how many."""
    if not github_ids:
        return 0
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(kubeconfig)
    )
    try:
        core = client.CoreV1Api(api)
        found = core.list_namespace(label_selector=OWNER_ID).items
        owners = {str(i) for i in github_ids}
        names = [
            ns.metadata.name
            for ns in found
            if ns.metadata
            and ns.metadata.name
            and (ns.metadata.labels or {}).get(OWNER_ID) in owners
        ]
        for name in names:
            with contextlib.suppress(client.ApiException):
                core.delete_namespace(name)
        return len(names)
    finally:
        api.close()  # type: ignore[no-untyped-call]


def sign_up(
    url: str, github: StandInServer, github_id: int, verify: ssl.SSLContext | bool = True
) -> tuple[Tenant, float]:
    """One new user through the OAuth flow, then an API token; returns it and the callback's ms."""
    login = f"ld{secrets.token_hex(4)}"
    with httpx.Client(base_url=url, timeout=120, verify=verify) as browser:
        callback = authorize(browser, github, login=login, user_id=github_id)
        started = time.perf_counter()
        signed_in = browser.get(callback)
        elapsed = (time.perf_counter() - started) * 1000
        if signed_in.status_code != 302:
            raise RuntimeError(f"sign-in of {login}: {signed_in.status_code} {signed_in.text}")
        me = browser.get("/api/v1/me")
        me.raise_for_status()
        created = browser.post(
            "/api/v1/tokens",
            json={"name": "load", "expires_in_days": 1},
            headers={"X-CSRF-Token": me.json()["csrf_token"]},  # a write with the cookie
        )
        if created.status_code != 201:
            raise RuntimeError(f"token of {login}: {created.status_code} {created.text}")
    namespace = me.json()["namespaces"][0]["name"]
    return Tenant(login, github_id, namespace, created.json()["token"]), elapsed


def sign_up_all(
    url: str,
    github: StandInServer,
    count: int,
    github_ids: set[int],
    verify: ssl.SSLContext | bool = True,
) -> tuple[list[Tenant], list[float]]:
    """``count`` tenants, four sign-ups at a time; ``github_ids`` collects every id tried."""
    ids = [10_000_000 + secrets.randbelow(10**9) for _ in range(count)]
    github_ids.update(ids)
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda i: sign_up(url, github, i, verify), ids))
    return [tenant for tenant, _ in done], [ms for _, ms in done]


def rss_mib(pid: int) -> float:
    """The process's resident set size from /proc, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def plane_pids(kubeconfig: Path) -> list[int]:
    """The processes of the plane behind ``kubeconfig`` when it is a local plane (its state lies
    beside its admin kubeconfig), to read their CPU time; none for any other cluster."""
    plane = ControlPlane(kubeconfig.parent)
    return list(plane.pids().values()) if plane.kubeconfig == kubeconfig else []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of unsorted values (0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
