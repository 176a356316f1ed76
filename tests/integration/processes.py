"""`kuberth serve` as a real process of its own, for tests that kill, stop or multiply it."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from kuberth.devtools.github import StandInServer
from tests.integration.objects import held_deployment
from tests.timing import eventually, scaled


def serve_environment(
    *,
    port: int,
    kubeconfig: Path,
    github: StandInServer,
    database_url: str,
    secret_key: str,
    public_url: str | None = None,
    **settings: str,
) -> dict[str, str]:
    """KUBERTH_* variables for a production-strict server on a loopback port.

    ``public_url`` defaults to the server's own address; replicas behind one address share it.
    ``settings`` are more variables, without the prefix (``lease_duration="4"``).
    """
    public_url = public_url or f"http://127.0.0.1:{port}"
    github.state.redirect_uris.add(f"{public_url}/auth/github/callback")
    return {
        "KUBERTH_ENVIRONMENT": "production",
        "KUBERTH_HOST": "127.0.0.1",
        "KUBERTH_PORT": str(port),
        "KUBERTH_PUBLIC_URL": public_url,
        "KUBERTH_KUBECONFIG": str(kubeconfig),
        "KUBERTH_DATABASE_URL": database_url,
        "KUBERTH_SECRET_KEY": secret_key,
        "KUBERTH_GITHUB_URL": github.url,
        "KUBERTH_GITHUB_API_URL": github.api_url,
        "KUBERTH_GITHUB_CLIENT_ID": github.state.client_id,
        "KUBERTH_GITHUB_CLIENT_SECRET": github.state.client_secret,
        "KUBERTH_SIGNUP_ANYONE": "true",
        **{f"KUBERTH_{key.upper()}": value for key, value in settings.items()},
    }


class KuberthProcess:
    """`kuberth serve` as its own process, configured through KUBERTH_* variables."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.url = f"http://{environment['KUBERTH_HOST']}:{environment['KUBERTH_PORT']}"
        self._environment = environment
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> KuberthProcess:
        """Start the process and wait until it is ready; on any failure, kill it again."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kuberth", "serve"],
                env={**os.environ, **self._environment},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def wait_ready(self, within: float = 60) -> None:
        """Until /readyz answers 200 (a process starting up has nothing to watch).

        Each probe waits as long as the server's own readiness check may take (it asks the API
        server, bounded by the Kubernetes request timeout): a slow answer is not "not ready".
        """
        probe_timeout = float(self._environment.get("KUBERTH_KUBERNETES_REQUEST_TIMEOUT", 10)) + 5

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"kuberth serve exited with {self.process.returncode}: {self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{self.url}/readyz", timeout=probe_timeout).status_code == 200
            return False

        try:
            eventually(ready, within=within, what=f"kuberth serve on {self.url} ready")
        except AssertionError as error:
            raise AssertionError(f"{error}; its log:\n{self.log_tail()}") from None

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:]

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self) -> None:
        """SIGTERM, as Kubernetes stops a pod; the process drains its requests and exits."""
        assert self.process is not None
        self.process.terminate()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()


def metric(url: str, name: str, **labels: str) -> float:
    """A sample from the /metrics of the Kuberth at ``url`` (0 when it has none yet)."""
    text = httpx.get(f"{url}/metrics", timeout=scaled(10)).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@contextlib.contextmanager
def rollout_wait_in_flight(
    url: str, browser: httpx.Client, apps: client.AppsV1Api, namespace: str
) -> Iterator[concurrent.futures.Future[httpx.Response]]:
    """A tenant's wait for the rollout of a :func:`held_deployment` it creates, open in the
    Kuberth at ``url`` (its watch counted in the metrics) when this yields; it ends when the test
    calls :func:`complete_rollout`."""
    apps.create_namespaced_deployment(namespace, held_deployment())
    watch = {"verb": "WATCH", "code": "200"}
    watches = metric(url, "kuberth_kubernetes_requests_total", **watch)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(
            browser.get,
            f"/api/v1/namespaces/{namespace}/deployments/held/rollout",
            params={"timeout": 60},
        )
        # The request's watch is open: nothing in Kubernetes shows that, its metric does.
        eventually(
            lambda: metric(url, "kuberth_kubernetes_requests_total", **watch) > watches,
            within=30,
            what="the rollout request's watch",
        )
        yield waiting
