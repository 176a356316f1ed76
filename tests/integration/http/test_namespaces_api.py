"""The namespace API: only one's own namespaces, honest errors, deletion that waits with a watch."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kuberth.devtools.github import StandInServer
from tests.integration.conftest import KuberthFactory, Tenant
from tests.integration.signin import sign_in
from tests.kubeconfigs import unreachable
from tests.timing import scaled


def test_get_shows_phase_and_quota_usage(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    listed = alice.http.get("/api/v1/namespaces").json()["items"]
    assert [n["name"] for n in listed] == [alice.namespace]

    detail = alice.http.get(f"/api/v1/namespaces/{alice.namespace}").json()
    assert detail["phase"] == "Active"
    assert detail["personal"] is True
    assert detail["quota"]["pods"]["hard"] == "50"
    assert detail["quota"]["pods"]["used"] in ("0", None)  # counted by the quota controller


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_create_an_extra_namespace(
    encoding: str, tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    name = f"{alice.namespace}-staging"
    payload = {"json": {"name": name}} if encoding == "json" else {"data": {"name": name}}
    created = alice.http.post("/api/v1/namespaces", **payload)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == name
    assert created.json()["personal"] is False

    ns = client.CoreV1Api(admin_api).read_namespace(name)
    assert ns.metadata.labels["kuberth.dev/owner-id"] == str(alice.github_id)
    binding = client.RbacAuthorizationV1Api(admin_api).read_namespaced_role_binding(
        "kuberth-tenant", name
    )
    assert binding.subjects[0].name == f"kuberth:{alice.github_id}"
    names = [n["name"] for n in alice.http.get("/api/v1/namespaces").json()["items"]]
    assert names == [alice.namespace, name]


@pytest.mark.parametrize(
    "name",
    ["Upper", "under_score", "-leading", "trailing-", "x" * 64, "", "näme", "dot.ted", "a b"],
)
def test_invalid_names_are_422_naming_the_field(name: str, tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    response = alice.http.post("/api/v1/namespaces", json={"name": name})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "name"
    assert response.json()["error"] == "invalid"


def test_malformed_bodies_are_refused(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    missing = alice.http.post("/api/v1/namespaces", json={})
    assert missing.status_code == 422
    assert missing.json()["field"] == "name"
    extra = alice.http.post("/api/v1/namespaces", json={"name": f"{alice.login}-a", "owner": 1})
    assert extra.status_code == 422
    assert extra.json()["field"] == "owner"
    not_json = alice.http.post(
        "/api/v1/namespaces", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400


@pytest.mark.parametrize(
    "name", ["default", "kube-system", "kube-anything", "openshift-x", "kuberth"]
)
def test_reserved_names_are_403(name: str, tenants: Callable[..., Tenant]) -> None:
    response = tenants().http.post("/api/v1/namespaces", json={"name": name})
    assert response.status_code == 403
    assert response.json()["field"] == "name"


def test_names_outside_ones_prefix_and_over_the_limit_are_403(
    tenants: Callable[..., Tenant],
) -> None:
    alice = tenants()
    assert alice.http.post("/api/v1/namespaces", json={"name": "somebody-else"}).status_code == 403
    for suffix in ("a", "b", "c"):  # the personal one plus three: the default limit of four
        created = alice.http.post("/api/v1/namespaces", json={"name": f"{alice.login}-{suffix}"})
        assert created.status_code == 201, created.text
    over = alice.http.post("/api/v1/namespaces", json={"name": f"{alice.login}-d"})
    assert over.status_code == 403
    assert "most allowed" in over.json()["message"]


def test_a_taken_name_is_409(tenants: Callable[..., Tenant], admin_api: client.ApiClient) -> None:
    alice = tenants()
    name = f"{alice.login}-taken"
    client.CoreV1Api(admin_api).create_namespace({"metadata": {"name": name}})
    try:
        response = alice.http.post("/api/v1/namespaces", json={"name": name})
        assert response.status_code == 409
        assert (
            client.CoreV1Api(admin_api)
            .read_namespace(name)
            .metadata.labels.get("kuberth.dev/owner-id")
            is None
        )
    finally:
        client.CoreV1Api(admin_api).delete_namespace(name)


def test_another_tenants_namespace_is_not_found_for_every_verb(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice, bob = tenants(), tenants()
    core = client.CoreV1Api(admin_api)
    before = core.read_namespace(bob.namespace)

    for http in (alice.http,):
        assert http.get(f"/api/v1/namespaces/{bob.namespace}").status_code == 404
        assert http.delete(f"/api/v1/namespaces/{bob.namespace}").status_code == 404
        assert http.delete(f"/api/v1/namespaces/{bob.namespace}?wait=false").status_code == 404
        # Claiming it as an extra namespace is refused before anything is touched.
        assert http.post("/api/v1/namespaces", json={"name": bob.namespace}).status_code == 403
    # Not found looks the same as a namespace that does not exist at all.
    missing = f"{bob.namespace}x"
    ghost = alice.http.get(f"/api/v1/namespaces/{missing}")
    theirs = alice.http.get(f"/api/v1/namespaces/{bob.namespace}")
    assert ghost.status_code == theirs.status_code == 404
    assert theirs.json()["error"] == "not_found"
    assert ghost.text.replace(missing, "NS") == theirs.text.replace(bob.namespace, "NS")
    assert bob.namespace not in [
        n["name"] for n in alice.http.get("/api/v1/namespaces").json()["items"]
    ]

    after = core.read_namespace(bob.namespace)
    assert after.metadata.resource_version == before.metadata.resource_version
    assert bob.http.get(f"/api/v1/namespaces/{bob.namespace}").status_code == 200


def test_anonymous_requests_are_401(kuberth: KuberthFactory) -> None:
    with kuberth() as http:
        for method, path in [
            ("GET", "/api/v1/me"),
            ("GET", "/api/v1/namespaces"),
            ("POST", "/api/v1/namespaces"),
            ("GET", "/api/v1/namespaces/default"),
            ("DELETE", "/api/v1/namespaces/default"),
            ("GET", "/api/v1/tokens"),
        ]:
            response = http.request(method, path, json={"name": "x"} if method == "POST" else None)
            assert response.status_code == 401, (method, path)
        # Identity headers sent by a client are never trusted.
        forged = http.get(
            "/api/v1/me", headers={"Impersonate-User": "kuberth:1", "X-Forwarded-User": "admin"}
        )
        assert forged.status_code == 401


def test_delete_waits_for_the_namespace_to_be_gone(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    name = f"{alice.login}-tmp"
    assert alice.http.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    started = time.monotonic()
    response = alice.http.delete(f"/api/v1/namespaces/{name}")
    elapsed = time.monotonic() - started
    assert response.status_code == 204
    with pytest.raises(ApiException) as gone:
        client.CoreV1Api(admin_api).read_namespace(name)
    assert gone.value.status == 404
    # The namespace controller's own work, plus a watch event, not a poll.
    assert elapsed < scaled(30)
    assert alice.http.get(f"/api/v1/namespaces/{name}").status_code == 404
    assert alice.http.delete(f"/api/v1/namespaces/{name}").status_code == 404


def test_delete_without_waiting_is_202(tenants: Callable[..., Tenant]) -> None:
    alice = tenants()
    name = f"{alice.login}-nowait"
    created = alice.http.post("/api/v1/namespaces", json={"name": name})
    assert created.status_code == 201, created.text
    response = alice.http.delete(f"/api/v1/namespaces/{name}", params={"wait": "false"})
    assert response.status_code == 202, response.text
    assert response.json()["namespace"]["phase"] == "Terminating"


def test_a_namespace_stuck_on_a_finalizer_is_202_with_its_conditions(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    name = f"{alice.login}-stuck"
    created = alice.http.post("/api/v1/namespaces", json={"name": name})
    assert created.status_code == 201, created.text
    core = client.CoreV1Api(admin_api)
    core.create_namespaced_config_map(
        name, {"metadata": {"name": "held", "finalizers": ["kuberth.dev/test-hold"]}}
    )
    try:
        started = time.monotonic()
        response = alice.http.delete(f"/api/v1/namespaces/{name}", params={"timeout": 8})
        assert time.monotonic() - started < 8 + scaled(7)  # the timeout, plus some slack
        assert response.status_code == 202, response.text
        pending = response.json()["namespace"]
        assert pending["phase"] == "Terminating"
        assert "kubernetes" in pending["finalizers"]
        reasons = {c["type"]: c.get("reason") for c in pending["conditions"]}
        assert reasons.get("NamespaceFinalizersRemaining") == "SomeFinalizersRemain"
    finally:
        core.patch_namespaced_config_map("held", name, {"metadata": {"finalizers": None}})


def test_unreachable_kubernetes_is_503_with_retry_after_and_creates_nothing(
    kuberth: KuberthFactory, github: StandInServer, tmp_path: Path, new_id: Callable[[], int]
) -> None:
    dead = unreachable(tmp_path / "dead.kubeconfig")
    with kuberth(kubeconfig=dead, kubernetes_retry_after=9, kubernetes_request_timeout=2) as http:
        response = sign_in(http, github, login=f"t{secrets.token_hex(3)}", user_id=new_id())
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "9"
        assert response.json()["error"] == "kubernetes_unavailable"
        assert http.get("/api/v1/me").status_code == 401  # no user was recorded


def test_operators_see_and_manage_every_tenant(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    operator_id, tenant_id = new_id(), new_id()
    tenant_login, operator_login = f"t{secrets.token_hex(4)}", f"o{secrets.token_hex(4)}"
    with (
        kuberth_server(admin_github_ids=[operator_id]) as url,
        httpx.Client(base_url=url, timeout=120) as tenant,
        httpx.Client(base_url=url, timeout=120) as operator,
    ):
        assert sign_in(tenant, github, login=tenant_login, user_id=tenant_id).status_code == 302
        assert (
            sign_in(operator, github, login=operator_login, user_id=operator_id).status_code == 302
        )
        assert operator.get("/api/v1/me").json()["is_admin"] is True
        everyone = {n["name"] for n in operator.get("/api/v1/namespaces").json()["items"]}
        assert {tenant_login, operator_login} <= everyone
        assert operator.get(f"/api/v1/namespaces/{tenant_login}").json()["owner_id"] == tenant_id
        # Operators may create any name that is not reserved, but never a reserved one.
        assert operator.post("/api/v1/namespaces", json={"name": "kube-mine"}).status_code == 403
        # The tenant still sees only its own.
        assert [n["name"] for n in tenant.get("/api/v1/namespaces").json()["items"]] == [
            tenant_login
        ]


def test_openapi_documents_routes_bodies_and_errors(kuberth: KuberthFactory) -> None:
    with kuberth() as http:
        schema = http.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/namespaces",
        "/api/v1/namespaces/{namespace}",
        "/api/v1/me",
        "/api/v1/tokens",
    ):
        assert path in paths
    create = paths["/api/v1/namespaces"]["post"]
    assert set(create["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert {"201", "403", "409", "422", "503"} <= set(create["responses"])
    delete = paths["/api/v1/namespaces/{namespace}"]["delete"]
    assert {"202", "204", "404"} <= set(delete["responses"])
    deployments = paths["/api/v1/namespaces/{namespace}/deployments"]["post"]
    body = deployments["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/DeploymentSpec"} in body["anyOf"]
    assert deployments["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Deployment"
    }
    for route in (
        "apps",
        "ingresses/{name}",
        "services/{name}",
        "kubeconfig",
        "deployments/{name}/rollout",
    ):
        assert f"/api/v1/namespaces/{{namespace}}/{route}" in paths
    error = schema["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"error", "message", "field"}
