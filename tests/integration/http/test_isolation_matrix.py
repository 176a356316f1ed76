"""Every namespaced API route x every method x (own, another tenant's, reserved, missing namespace)
x (session cookie, API token, anonymous). Others' namespaces are 404 and left exactly as they were.

The routes come from Kuberth's own OpenAPI schema, so a new route joins the matrix by itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from kubernetes import client

from tests.integration.conftest import Tenant
from tests.integration.snapshots import snapshot

BODIES: dict[str, Any] = {
    "apps": {"name": "web", "image": "nginx:1.27"},
    "deployments": {"name": "web", "image": "nginx:1.27"},
    "services": {"name": "web", "app": "web", "ports": [{"port": 80}]},
    "ingresses": {"name": "web", "host": "x.example", "paths": [{"service": "web", "port": 80}]},
    "scale": {"replicas": 1},
}


def _routes(http: httpx.Client) -> list[tuple[str, str]]:
    schema = http.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if "{namespace}" in path
        for method in operations
    ]


def _request(
    http: httpx.Client, method: str, template: str, namespace: str, headers: dict[str, str]
) -> httpx.Response:
    path = template.replace("{namespace}", namespace).replace("{name}", "web")
    path = re.sub(r"\{[^}]+\}", "1", path)
    segments = template.rstrip("/").split("/")
    key = segments[-2] if segments[-1] == "{name}" else segments[-1]  # the kind, or the action
    body = BODIES.get(key) if method in ("POST", "PUT") else None
    if method == "PATCH":
        body = {"replicas": 1} if "/apps/" in path else {"metadata": {"labels": {"x": "y"}}}
    if method == "POST" and key == "namespaces":  # never reached: no {namespace} in that path
        body = {"name": f"{namespace}-x"}
    if path.endswith("/rollout"):
        path += "?timeout=1"
    if method == "DELETE" and segments[-1] == "{namespace}":
        path += "?wait=false"
    return http.request(method, path, json=body, headers=headers)


def test_isolation_matrix(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient, capsys: Any
) -> None:
    alice, bob = tenants(), tenants()
    bob.http.post(
        f"/api/v1/namespaces/{bob.namespace}/apps", json={"name": "web", "image": "nginx:1.27"}
    )
    bob_token = bob.http.post("/api/v1/tokens", json={"name": "matrix"}).json()["token"]
    alice_token = alice.http.post("/api/v1/tokens", json={"name": "matrix"}).json()["token"]
    anonymous = httpx.Client(base_url=str(alice.http.base_url), timeout=60)
    routes = _routes(alice.http)
    before = snapshot(admin_api, bob.namespace)
    reserved_before = {
        ns: snapshot(admin_api, ns, system=True) for ns in ("default", "kube-system")
    }

    cases = 0
    failures: list[str] = []
    for method, template in routes:
        for who, http, headers in (
            ("cookie", alice.http, {}),
            ("token", anonymous, {"Authorization": f"Bearer {alice_token}"}),
        ):
            for target in (bob.namespace, "kube-system", "default", "does-not-exist-x"):
                cases += 1
                status = _request(http, method, template, target, headers).status_code
                if status != 404:
                    failures.append(f"{who} {method} {template} on {target}: {status}")
        cases += 1
        status = _request(anonymous, method, template, bob.namespace, {}).status_code
        if status != 401:
            failures.append(f"anonymous {method} {template}: {status}")
    # Bob's own token still works on his own namespace: the matrix is not refusing everything.
    for method, template in routes:
        if (
            method != "GET"
            or template.endswith(("/rollout", "/kubeconfig"))
            or "{name}" in template
        ):
            continue
        cases += 1
        status = _request(
            anonymous, method, template, bob.namespace, {"Authorization": f"Bearer {bob_token}"}
        ).status_code
        if status != 200:
            failures.append(f"owner GET {template}: {status}")

    with capsys.disabled():
        expected = cases - len(failures)
        print(f"\nisolation matrix: {len(routes)} routes, {cases} cases, {expected} as expected")
    assert not failures, "\n".join(failures)
    assert snapshot(admin_api, bob.namespace) == before
    for ns, taken in reserved_before.items():
        assert snapshot(admin_api, ns, system=True) == taken
    anonymous.close()
