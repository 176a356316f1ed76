"""Time from GitHub's redirect to Kuberth's callback until the tenant's namespace is complete.

Runs the real OAuth flow (GitHub stand-in) against a running local control plane, N first
sign-ins of new users, and reports the median and spread of the callback request, which covers
the token exchange, /user, and the provisioning (create namespace + 4 server-side applies).

    .venv/bin/kuberth cluster up
    .venv/bin/python -m bench.signup_latency [--runs 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from urllib.parse import parse_qsl, urlsplit

import httpx

from kuberth.cluster.plane import ControlPlane, free_port
from kuberth.devtools.github import GitHubStandIn, StandInServer, ThreadedServer
from kuberth.http.app import create_app
from kuberth.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    plane = ControlPlane(Settings().cluster_dir)
    if not plane.is_running():
        raise SystemExit("start the plane first: kuberth cluster up")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    github = StandInServer(
        GitHubStandIn(redirect_uris={f"{url}/auth/github/callback"}), port=free_port()
    )
    github.start()
    database_url = args.database_url or f"sqlite:////tmp/kuberth-bench-{secrets.token_hex(4)}.db"
    settings = Settings(
        environment="development",
        kubeconfig=plane.kubeconfig,
        database_url=database_url,
        public_url=url,
        github_url=github.url,
        github_api_url=github.api_url,
        github_client_id=github.state.client_id,
        github_client_secret=github.state.client_secret,
        signup_anyone=True,
    )
    server = ThreadedServer(create_app(settings), port=port).start()
    timings = []
    try:
        for _ in range(args.runs):
            with httpx.Client(base_url=url) as browser:
                location = urlsplit(browser.get("/auth/github/login").headers["location"])
                approved = httpx.post(
                    f"{github.url}/login/oauth/authorize",
                    data={
                        **dict(parse_qsl(location.query)),
                        "login": f"bench{secrets.token_hex(4)}",
                        "user_id": str(secrets.randbelow(10**9) + 10**9),
                    },
                )
                callback = urlsplit(approved.headers["location"])
                started = time.perf_counter()
                response = browser.get(f"{callback.path}?{callback.query}")
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 302, response.text
    finally:
        server.stop()
        github.stop()
    timings.sort()
    print(
        f"first sign-ins: {len(timings)}, database {database_url.split(':')[0]}\n"
        f"callback -> provisioned namespace: median {statistics.median(timings):.1f} ms, "
        f"min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
