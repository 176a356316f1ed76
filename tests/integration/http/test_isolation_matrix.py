"""Every namespaced API route x every method x (own, another tenant's, reserved, missing namespace)
x (session cookie, API token, anonymous). Others' namespaces are 404 and left exactly as they were.

The routes come from Kuberth's own OpenAPI schema, so a new route joins the matrix by itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
from kubernetes import client

from tests.integration.conftest import Tenant

BODIES: dict[str, Any] = {
    "apps": {"name": "web", "image": "nginx:1.27"},
    "deployments": {"name": "web", "image": "nginx:1.27"},
    "services": {"name": "web", "app": "web", "ports": [{"port": 80}]},
    "ingresses": {"name": "web", "host": "x.example", "paths": [{"service": "web", "port": 80}]},
    "scale": {"replicas": 1},
}


def _snapshot(admin_api: client.ApiClient, namespace: str, *, system: bool = False) -> str:
    """What a tenant could change in a namespace (status and versions move on their own).

    In a system namespace the controllers keep adding service accounts and config maps of their
    own; there, the kinds Kuberth's routes write are compared.
    """
    api = client.ApiClient(admin_api.configuration)
    objects = []
    paths = [
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        f"/api/v1/namespaces/{namespace}/services",
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses",
    ]
    if not system:
        paths += [
            f"/api/v1/namespaces/{namespace}",
            f"/api/v1/namespaces/{namespace}/configmaps",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
            f"/api/v1/namespaces/{namespace}/resourcequotas",
        ]
    for path in paths:
        method, url, headers, _body, _ = api.param_serialize(
            method="GET", resource_path=path, auth_settings=["BearerToken"]
        )
        data = json.loads(api.call_api(method, url, header_params=headers).read())
        for item in data.get("items", [data]):
            meta = item.get("metadata", {})
            objects.append(
                {
                    "kind": item.get("kind", data.get("kind")),
                    "name": meta.get("name"),
                    "labels": meta.get("labels"),
                    "annotations": meta.get("annotations"),
                    "generation": meta.get("generation"),
                    "deletion": meta.get("deletionTimestamp"),
                    "spec": item.get("spec"),
                    "data": item.get("data"),
                    "rbac": [item.get("roleRef"), item.get("subjects")],
                }
            )
    return json.dumps(
        sorted(objects, key=lambda o: (o["kind"] or "", o["name"] or "")), sort_keys=True
    )


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
    before = _snapshot(admin_api, bob.namespace)
    reserved_before = {
        ns: _snapshot(admin_api, ns, system=True) for ns in ("default", "kube-system")
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
    assert _snapshot(admin_api, bob.namespace) == before
    for ns, snapshot in reserved_before.items():
        assert _snapshot(admin_api, ns, system=True) == snapshot
    anonymous.close()
