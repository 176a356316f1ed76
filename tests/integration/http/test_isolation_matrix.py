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


# Routes the matrix must include (it may grow): one of each shape, so a schema that stopped
# listing them, or a matrix that stopped finding them, fails instead of checking less.
REQUIRED = {
    ("GET", "/api/v1/namespaces/{namespace}"),
    ("DELETE", "/api/v1/namespaces/{namespace}"),
    ("GET", "/api/v1/namespaces/{namespace}/apps"),
    ("POST", "/api/v1/namespaces/{namespace}/apps"),
    ("GET", "/api/v1/namespaces/{namespace}/apps/{name}"),
    ("PATCH", "/api/v1/namespaces/{namespace}/apps/{name}"),
    ("DELETE", "/api/v1/namespaces/{namespace}/apps/{name}"),
    *(
        (method, f"/api/v1/namespaces/{{namespace}}/{plural}{suffix}")
        for plural in ("deployments", "services", "ingresses")
        for method, suffix in (
            ("GET", ""),
            ("POST", ""),
            ("GET", "/{name}"),
            ("PUT", "/{name}"),
            ("PATCH", "/{name}"),
            ("DELETE", "/{name}"),
        )
    ),
    ("POST", "/api/v1/namespaces/{namespace}/deployments/{name}/scale"),
    ("POST", "/api/v1/namespaces/{namespace}/deployments/{name}/restart"),
    ("GET", "/api/v1/namespaces/{namespace}/deployments/{name}/rollout"),
    ("GET", "/api/v1/namespaces/{namespace}/kubeconfig"),
    ("DELETE", "/api/v1/namespaces/{namespace}/kubeconfig"),
}
TARGETS = 4  # another tenant's namespace, kube-system, default, a missing one
CALLERS = 2  # session cookie, API token


def _routes(http: httpx.Client) -> list[tuple[str, str]]:
    response = http.get("/openapi.json")
    assert response.status_code == 200, response.text
    schema = response.json()
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
    # Bob's app `web` (a Deployment, Service and Ingress `web`) is what {name} aims at: without
    # it, a 404 would say nothing about isolation.
    created = bob.http.post(
        f"/api/v1/namespaces/{bob.namespace}/apps", json={"name": "web", "image": "nginx:1.27"}
    )
    assert created.status_code == 201, created.text
    tokens = [t.http.post("/api/v1/tokens", json={"name": "matrix"}) for t in (bob, alice)]
    for response in tokens:
        assert response.status_code == 201, response.text
    bob_token, alice_token = (response.json()["token"] for response in tokens)
    anonymous = httpx.Client(base_url=str(alice.http.base_url), timeout=60)
    routes = _routes(alice.http)
    missing = REQUIRED - set(routes)
    assert not missing, f"the matrix lacks {sorted(missing)}"
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
    refusals = cases
    assert refusals == len(routes) * (CALLERS * TARGETS + 1)
    # Bob's own token still works on his own namespace, on his own objects too: the matrix is
    # not refusing everything, and the objects it aimed at exist.
    owner_cases = 0
    for method, template in routes:
        if method != "GET" or template.endswith(("/rollout", "/kubeconfig")):
            continue
        cases += 1
        owner_cases += 1
        status = _request(
            anonymous, method, template, bob.namespace, {"Authorization": f"Bearer {bob_token}"}
        ).status_code
        # A pod's log is read from its node's kubelet: the matrix's pods are on kwok's node,
        # which has none, so the owner gets the documented 409 naming the pod (still not a 404).
        allowed = {200, 409} if template.endswith("/logs") else {200}
        if status not in allowed:
            failures.append(f"owner GET {template}: {status}")

    with capsys.disabled():
        expected = cases - len(failures)
        print(f"\nisolation matrix: {len(routes)} routes, {cases} cases, {expected} as expected")
    assert not failures, "\n".join(failures)
    # Every GET of REQUIRED but the rollout and the kubeconfig (which the owner cases skip).
    assert owner_cases >= 9, owner_cases
    assert refusals >= len(REQUIRED) * (CALLERS * TARGETS + 1)
    assert snapshot(admin_api, bob.namespace) == before
    for ns, taken in reserved_before.items():
        assert snapshot(admin_api, ns, system=True) == taken
    anonymous.close()
