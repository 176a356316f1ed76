"""Schemathesis against Kuberth's own OpenAPI schema, as a signed-in tenant, on the real plane.

Checks every operation for: no 5xx, responses documented and matching their schemas. The number of
examples per operation is bounded here (KUBERTH_FUZZ_EXAMPLES, default 15); `make fuzz` runs more.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kuberth.devtools.github import StandInServer
from tests.integration.signin import sign_in
from tests.timing import scaled

EXAMPLES = int(os.environ.get("KUBERTH_FUZZ_EXAMPLES", "15"))
#: Seconds the Schemathesis run may take (`make fuzz`, 200 examples, takes minutes, not seconds).
FUZZ_TIMEOUT = 1200 * max(1, EXAMPLES // 200)


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest,
    kubeconfig: object,
    github: StandInServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str, str]]:
    """(url, token, namespace) of a Kuberth server with one signed-in tenant."""
    from kuberth.cluster.plane import free_port
    from kuberth.devtools.github import ThreadedServer
    from kuberth.http.app import create_app
    from kuberth.settings import Settings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    github.state.redirect_uris.add(f"{url}/auth/github/callback")
    database = tmp_path_factory.mktemp("fuzz") / "kuberth.db"
    settings = Settings(
        environment="production",
        kubeconfig=kubeconfig,
        database_url=f"sqlite:///{database}",
        secret_key=secrets.token_urlsafe(32),
        public_url=url,
        github_url=github.url,
        github_api_url=github.api_url,
        github_client_id=github.state.client_id,
        github_client_secret=github.state.client_secret,
        signup_anyone=True,
        rate_limit_per_second=0,  # hundreds of requests a second from one tenant, on purpose
    )
    server = ThreadedServer(create_app(settings), port=port).start(timeout=scaled(60))
    try:
        login = f"fz{secrets.token_hex(4)}"
        with httpx.Client(base_url=url, timeout=scaled(60)) as browser:
            user_id = 10**9 + secrets.randbelow(10**8)
            assert sign_in(browser, github, login=login, user_id=user_id).status_code == 302
            created = browser.post("/api/v1/tokens", json={"name": "fuzz"})
            assert created.status_code == 201, created.text
        yield url, created.json()["token"], login
    finally:
        server.stop()


@pytest.mark.timeout(scaled(FUZZ_TIMEOUT + 120))  # the run's own limit, and the set-up
def test_the_api_survives_schemathesis(target: tuple[str, str, str], tmp_path: Path) -> None:
    url, token, namespace = target
    report = tmp_path / "report.json"
    # Every namespaced operation is aimed at the tenant's own namespace, so the generated bodies
    # reach the real create/update paths instead of a 404 for a random namespace name.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
# Every check is on by default (a --checks option would override the per-operation setting).
[parameters]
"path.namespace" = "{namespace}"
# A rollout watch waits for pods that generated images never give it; two seconds are enough.
"query.timeout" = 2

# These bodies are the concise form or the native Kubernetes object. The native form's schema is
# Kubernetes' own, too large to inline, so "any object" is what the schema can say; Kubernetes
# (or Kuberth) then refuses most generated objects with a 422 naming the field, which is right,
# but not the acceptance Schemathesis expects of a schema-valid body.
[[operations]]
include-path-regex = "/(deployments|services|ingresses)(/[^/]+)?$"
include-method = ["POST", "PUT"]
checks.positive_data_acceptance.enabled = false
"""
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            os.environ.get("KUBERTH_FUZZ_SEED", "20261124"),
            "--header",
            f"Authorization: Bearer {token}",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            "--no-color",
            # Revoking its own token or signing out would end the run's authentication.
            "--exclude-operation-id",
            "revoke_token_api_v1_tokens__token_id__delete",
            # Deleting the namespace itself would leave nothing to fuzz; tested on its own.
            "--exclude-operation-id",
            "delete_namespace_api_v1_namespaces__namespace__delete",
            # The OAuth endpoints are a browser flow with one-time state, tested on their own.
            "--exclude-path-regex",
            "^/auth/",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=scaled(FUZZ_TIMEOUT),
    )
    (Path(__file__).parents[3] / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parents[3] / "artifacts" / "schemathesis.txt").write_text(result.stdout)
    summary = "\n".join(result.stdout.splitlines()[-60:])
    assert result.returncode == 0, summary
