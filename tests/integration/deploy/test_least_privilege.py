"""deploy/ on the real control plane, and proof that Kuberth's RBAC is no more than it needs.

The manifests are applied with server-side apply (the API server validates every object), into a
namespace of this module's own, with the cluster-wide objects that belong to one installation
renamed (as a kustomize overlay would). Kuberth then runs in process with a token of the deployed
service account and goes through the whole scenario (scenario.py): it must succeed. Then each rule
of the deployed roles is taken away in turn, and the same scenario must fail.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import inspect
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kuberth.cluster.build import Binaries
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer, ThreadedServer
from kuberth.exceptions import ForbiddenError, NotFoundError
from kuberth.services.builders.admission import HOST_WEBHOOK
from kuberth.services.builders.tenant import (
    MANAGED_BY,
    OWNER_ID,
    TENANT_CLUSTER_ROLE,
    tenant_cluster_role,
)
from kuberth.settings import Settings
from kuberth.storage.kubernetes.api import APPLY_PATCH, Identity, KubernetesApi
from tests.integration.conftest import TEST_LABEL
from tests.integration.deploy.scenario import Scenario, ScenarioFailedError, run
from tests.integration.watching import wait_until
from tests.timing import eventually

DEPLOY = Path(__file__).parents[3] / "deploy"
ARTIFACT = Path(__file__).parents[3] / "artifacts" / "least-privilege.md"
FIELD_MANAGER = "kuberth-deploy-test"
#: Cluster-wide objects of one installation: renamed per test run so runs never meet.
PER_INSTALL = {("ClusterRole", "kuberth"), ("ClusterRoleBinding", "kuberth")} | {
    (kind, "kuberth-guard")
    for kind in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
}
#: Where each kind lives in the API: (plural, namespaced).
KINDS = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "ValidatingAdmissionPolicy": ("validatingadmissionpolicies", False),
    "ValidatingAdmissionPolicyBinding": ("validatingadmissionpolicybindings", False),
    "Deployment": ("deployments", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "Ingress": ("ingresses", True),
}

Manifest = dict[str, Any]


def _path(manifest: Manifest) -> str:
    plural, namespaced = KINDS[manifest["kind"]]
    version = manifest["apiVersion"]
    base = "/api/v1" if version == "v1" else f"/apis/{version}"
    if namespaced:
        base += f"/namespaces/{manifest['metadata']['namespace']}"
    return f"{base}/{plural}/{manifest['metadata']['name']}"


def _role_rules(kind: str, name: str) -> list[Manifest]:
    """The rules of a role in deploy/, read from the files as they are (no cluster needed)."""
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind and doc["metadata"]["name"] == name:
                rules: list[Manifest] = doc["rules"]
                return rules
    raise AssertionError(f"no {kind} {name} in {DEPLOY}")


#: Every rule of Kuberth's roles, each (role kind, index) a case of the necessity test.
RULES = [("ClusterRole", i, r) for i, r in enumerate(_role_rules("ClusterRole", "kuberth"))] + [
    ("Role", i, r) for i, r in enumerate(_role_rules("Role", "kuberth-leases"))
]


def _rule_id(rule: Manifest) -> str:
    what = ",".join(rule["resources"])
    names = f"[{','.join(rule['resourceNames'])}]" if rule.get("resourceNames") else ""
    verbs = ",".join(v.removeprefix("impersonate-on:user-info:") for v in rule["verbs"])
    prefix = "as-tenant:" if rule["verbs"][0].startswith("impersonate-on:") else ""
    return f"{prefix}{what}{names}:{verbs}"


@dataclass
class Installation:
    """deploy/ as applied for this module: its namespace, names, and Kuberth's credentials."""

    admin: KubernetesApi
    namespace: str
    suffix: str
    manifests: list[Manifest]
    kubeconfig: Path
    service_account: str
    outcomes: dict[str, str] = field(default_factory=dict)

    def manifest(self, kind: str, name: str) -> Manifest:
        return next(
            m
            for m in self.manifests
            if m["kind"] == kind and m["metadata"]["name"] in (name, f"{name}-{self.suffix}")
        )

    def apply(self, manifest: Manifest) -> None:
        self.admin.request(
            "PATCH",
            _path(manifest),
            query={"fieldManager": FIELD_MANAGER, "force": True},
            body=manifest,
            content_type=APPLY_PATCH,
        )

    def allowed(self, rule: Manifest, namespace: str = "") -> bool:
        """Whether the service account may do the first thing ``rule`` grants (a
        SubjectAccessReview: the API server answers from the same RBAC copy it authorizes with)."""
        resource, _, subresource = rule["resources"][0].partition("/")
        review = self.admin.request(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": self.service_account,
                    "groups": [
                        "system:serviceaccounts",
                        f"system:serviceaccounts:{self.namespace}",
                    ],
                    "resourceAttributes": {
                        "group": rule["apiGroups"][0],
                        "resource": resource,
                        "subresource": subresource,
                        "verb": rule["verbs"][0],
                        "name": (rule.get("resourceNames") or [""])[0],
                        "namespace": namespace,
                    },
                },
            },
        )
        return bool(review["status"].get("allowed"))

    def wait_allowed(self, rule: Manifest, want: bool, namespace: str = "") -> None:
        # The authorizer reads a watch-fed copy of RBAC: nothing to watch for on our side.
        eventually(
            lambda: self.allowed(rule, namespace) == want,
            within=15,
            what=f"the rule {rule} {'granted' if want else 'denied'}"
            + ("" if want else " (else another rule grants the same, so it is not needed)"),
            interval=0.1,
        )


def _render(binaries: Binaries) -> list[Manifest]:
    rendered = subprocess.run(
        [str(binaries.kubectl), "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    secret = yaml.safe_load((DEPLOY / "secret.example.yaml").read_text())
    secret["stringData"]["KUBERTH_SECRET_KEY"] = secrets.token_urlsafe(32)
    return [m for m in yaml.safe_load_all(rendered) if m] + [secret]


def _overlay(manifests: list[Manifest], *, namespace: str, suffix: str) -> list[Manifest]:
    """What ``namespace: <namespace>`` and a name suffix in a kustomize overlay would do."""
    result = []
    for original in manifests:
        m = copy.deepcopy(original)
        meta = m["metadata"]
        if m["kind"] == "Namespace":
            meta["name"] = namespace
            meta.setdefault("labels", {})[TEST_LABEL] = "true"
        elif KINDS[m["kind"]][1]:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)  # kustomize sets it on kinds it does not know
        if (m["kind"], meta["name"]) in PER_INSTALL:
            meta["name"] = f"{meta['name']}-{suffix}"
        for subject in m.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace
        if m["kind"] == "ClusterRoleBinding" and m["roleRef"]["name"] == "kuberth":
            m["roleRef"]["name"] = f"kuberth-{suffix}"
        if m["kind"] == "ValidatingAdmissionPolicyBinding":
            m["spec"]["policyName"] = f"{m['spec']['policyName']}-{suffix}"
        result.append(m)
    return result


def _write_kubeconfig(path: Path, admin_api: client.ApiClient, token: str) -> None:
    configuration = admin_api.configuration
    with Path(configuration.ssl_ca_cert).open("rb") as ca:
        ca_data = base64.b64encode(ca.read()).decode()
    cluster = {"server": configuration.host, "certificate-authority-data": ca_data}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "plane", "cluster": cluster}],
                "users": [{"name": "kuberth", "user": {"token": token}}],
                "contexts": [
                    {"name": "kuberth", "context": {"cluster": "plane", "user": "kuberth"}}
                ],
                "current-context": "kuberth",
            }
        )
    )


def _check_tenant_role_in_sync() -> None:
    """deploy/'s tenant role must be the one Kuberth builds: Kuberth cannot change it itself, and
    applying an old copy here would change it for every other test on the cluster."""
    shipped = yaml.safe_load(
        (DEPLOY / "tenant-clusterrole.yaml").read_text(),
    )
    assert shipped == tenant_cluster_role(), (
        "deploy/tenant-clusterrole.yaml differs from tenant_cluster_role(): regenerate it"
    )


@pytest.fixture(scope="module")
def installation(
    binaries: Binaries,
    admin_api: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installation]:
    """deploy/ applied to the cluster under this module's own names; removed afterwards."""
    _check_tenant_role_in_sync()
    suffix = secrets.token_hex(3)
    namespace = f"kt-deploy-{suffix}"
    manifests = _overlay(_render(binaries), namespace=namespace, suffix=suffix)
    admin = KubernetesApi(admin_api, timeout=30, retry_after=5)
    kubeconfig = tmp_path_factory.mktemp("deploy") / "kuberth.kubeconfig"
    installed = Installation(
        admin=admin,
        namespace=namespace,
        suffix=suffix,
        manifests=manifests,
        kubeconfig=kubeconfig,
        service_account=f"system:serviceaccount:{namespace}:kuberth",
    )
    try:
        # The namespace first, then everything in it; the rest in the files' order.
        for manifest in sorted(manifests, key=lambda m: m["kind"] != "Namespace"):
            installed.apply(manifest)
        token = admin.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/kuberth/token",
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 7200},
            },
        )["status"]["token"]
        _write_kubeconfig(kubeconfig, admin_api, token)
        for kind, _, rule in RULES:
            installed.wait_allowed(rule, True, namespace if kind == "Role" else "")
        yield installed
    finally:
        _write_outcomes(installed.outcomes)
        for manifest in reversed(manifests):
            if manifest["kind"] == "Namespace" or KINDS[manifest["kind"]][1]:
                continue  # deleted with the namespace
            if manifest["metadata"]["name"] == TENANT_CLUSTER_ROLE:
                continue  # shared: every Kuberth on the cluster applies the same
            with contextlib.suppress(NotFoundError):  # never made: the set-up failed first
                admin.request("DELETE", _path(manifest))
        with contextlib.suppress(NotFoundError):
            admin.request("DELETE", f"/api/v1/namespaces/{namespace}")


def _write_outcomes(outcomes: dict[str, str]) -> None:
    if not outcomes:
        return
    ARTIFACT.parent.mkdir(exist_ok=True)
    lines = ["| rule taken away | first step that fails |", "| --- | --- |"]
    lines += [f"| `{rule}` | {step} |" for rule, step in outcomes.items()]
    ARTIFACT.write_text("\n".join(lines) + "\n")


@pytest.fixture
def start_kuberth(
    installation: Installation,
    kuberth_settings: Callable[..., Settings],
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
) -> Callable[[], AbstractContextManager[Scenario]]:
    """Kuberth in process, as the deployed service account, served on a loopback port."""

    @contextmanager
    def start() -> Iterator[Scenario]:
        from kuberth.http.app import create_app

        operator_id = new_id()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        webhook_port = free_port()
        settings = kuberth_settings(
            public_url=url,
            kubeconfig=installation.kubeconfig,
            kuberth_namespace=installation.namespace,
            admin_github_ids=[operator_id],
            admission_webhook_url=f"https://127.0.0.1:{webhook_port}",
            admission_listen_host="127.0.0.1",
            admission_listen_port=webhook_port,
        )
        app = create_app(settings)
        server = ThreadedServer(app, port=port).start()
        try:
            yield Scenario(
                app=app,
                url=url,
                github=github,
                new_id=new_id,
                admin_api=admin_api,
                operator_id=operator_id,
                lease_namespace=installation.namespace,
            )
        finally:
            server.stop()
            # Left registered, it would refuse every later tenant Ingress write in this session.
            with contextlib.suppress(client.ApiException):
                client.AdmissionregistrationV1Api(
                    admin_api
                ).delete_validating_webhook_configuration(HOST_WEBHOOK)

    return start


def test_the_deployment_passes_restricted_pod_security(
    installation: Installation, admin_api: client.ApiClient
) -> None:
    """Its namespace enforces the restricted Pod Security Standard: the ReplicaSet's pods exist
    only if their security context passes (kwok then plays their kubelet)."""
    deployment = wait_until(
        client.AppsV1Api(admin_api).list_namespaced_deployment,
        "kuberth",
        lambda d: (d.status.replicas or 0) == d.spec.replicas,
        namespace=installation.namespace,
    )
    assert deployment.spec.replicas >= 2
    pods = client.CoreV1Api(admin_api).list_namespaced_pod(
        installation.namespace, label_selector="app.kubernetes.io/name=kuberth"
    )
    assert len(pods.items) == deployment.spec.replicas
    for pod in pods.items:
        container = pod.spec.containers[0].security_context
        assert container.read_only_root_filesystem
        assert container.capabilities.drop == ["ALL"]
        assert pod.spec.security_context.run_as_non_root


def test_the_tenant_role_in_deploy_is_kuberths() -> None:
    _check_tenant_role_in_sync()


def test_no_wildcards_no_escalation_no_legacy_impersonation() -> None:
    for _, _, rule in RULES:
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(key, []), rule
        assert not {"escalate", "impersonate", "deletecollection"} & set(rule["verbs"]), rule
        assert "secrets" not in rule["resources"], rule


@dataclass(frozen=True)
class Access:
    """What the API server authorizes a request as (RBAC's attributes)."""

    verb: str
    group: str
    resource: str  # with its subresource: "serviceaccounts/token"
    name: str = ""


def _accesses(
    method: str, path: str, query: dict[str, Any], identity: Identity | None, status: int
) -> list[Access]:
    """Every authorization check a request of Kuberth's passed, as RBAC sees it."""
    parts = path.split("?")[0].strip("/").split("/")
    if parts[0] not in ("api", "apis"):
        return []  # /readyz and the like: open to every authenticated user
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    resource = "/".join([rest[0], *rest[2:3]])
    name = rest[1] if len(rest) > 1 else ""
    if method == "GET":
        verb = "get" if name else "watch" if str(query.get("watch")).lower() == "true" else "list"
        selector = str(query.get("fieldSelector", ""))
        if not name and selector.startswith("metadata.name="):  # RBAC sees a one-name list
            name = selector.removeprefix("metadata.name=")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
    if identity is not None:
        return [
            Access("impersonate:user-info", "authentication.k8s.io", "users", identity.user),
            *(
                Access("impersonate:user-info", "authentication.k8s.io", "groups", g)
                for g in identity.groups
            ),
            Access(f"impersonate-on:user-info:{verb}", group, resource, name),
        ]
    checks = [Access(verb, group, resource, name)]
    if method == "PATCH" and status == 201:  # server-side apply made it: a create, too
        checks.append(Access("create", group, resource, name))
        if resource == "rolebindings":  # ...binding a role Kuberth does not hold
            checks.append(
                Access("bind", "rbac.authorization.k8s.io", "clusterroles", TENANT_CLUSTER_ROLE)
            )
    return checks


#: Grants the scenario cannot use on a shared cluster, and why each is needed all the same.
UNUSED_ON_PURPOSE = {
    Access("create", "admissionregistration.k8s.io", resource, name): "only on a cluster that "
    "has no tenant admission policies yet (here other tests made them first)"
    for resource in ("validatingadmissionpolicies", "validatingadmissionpolicybindings")
    for name in ("kuberth-tenant-ingresses", "kuberth-tenant-services")
}


def _grants(rule: Manifest) -> list[Access]:
    return [
        Access(verb, group, resource, name)
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    ]


def _covers(grant: Access, access: Access) -> bool:
    return (grant.verb, grant.group, grant.resource) == (
        access.verb,
        access.group,
        access.resource,
    ) and grant.name in ("", access.name)


def test_kuberth_works_with_exactly_the_deployed_rights(
    installation: Installation,
    start_kuberth: Callable[[], AbstractContextManager[Scenario]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scenario passes; and every verb on every resource (and name) the roles grant was used
    by one of its requests (a finer check than taking whole rules away, which costs a run each)."""
    used: list[Access] = []
    send, asend, stream = KubernetesApi._send, KubernetesApi._asend, KubernetesApi._stream

    def note(
        api: KubernetesApi, call: dict[str, Any], status: int, method: str | None = None
    ) -> None:
        if api is not installation.admin and status != 403:
            method = method or call["method"]
            query = call["query"] or {}
            used.extend(_accesses(method, call["path"], query, call["identity"], status))

    def recording(self: KubernetesApi, *args: Any, **kwargs: Any) -> Any:
        response = send(self, *args, **kwargs)
        note(self, inspect.signature(send).bind(self, *args, **kwargs).arguments, response.status)
        return response

    async def arecording(self: KubernetesApi, *args: Any, **kwargs: Any) -> Any:
        response = await asend(self, *args, **kwargs)
        note(self, inspect.signature(asend).bind(self, *args, **kwargs).arguments, response.status)
        return response

    @contextlib.asynccontextmanager
    async def streaming(self: KubernetesApi, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """Watches and log streams on the event loop (refusals raise before this sees them)."""
        async with stream(self, *args, **kwargs) as response:
            call = inspect.signature(stream).bind(self, *args, **kwargs).arguments
            note(self, call, response.status, method="GET")
            yield response

    monkeypatch.setattr(KubernetesApi, "_send", recording)
    monkeypatch.setattr(KubernetesApi, "_asend", arecording)
    monkeypatch.setattr(KubernetesApi, "_stream", streaming)
    with start_kuberth() as scenario:
        run(scenario)
    for step, seconds in scenario.steps:
        print(f"{seconds:6.2f}s  {step}")
    unused = [
        grant
        for _, _, rule in RULES
        for grant in _grants(rule)
        if grant not in UNUSED_ON_PURPOSE and not any(_covers(grant, a) for a in used)
    ]
    assert not unused, f"granted but never used by the scenario: {unused}"


def _refusals(rule: Manifest) -> list[str]:
    """How the API server words a refusal of what ``rule`` grants."""
    found = [
        f'cannot {verb} resource "{resource}"'
        for verb in rule["verbs"]
        for resource in rule["resources"]
    ]
    if "bind" in rule["verbs"]:  # a RoleBinding to a role Kuberth neither holds nor may bind
        found.append("is attempting to grant RBAC permissions not currently held")
    return found


@pytest.mark.parametrize(
    ("role", "index"),
    [(kind, i) for kind, i, _ in RULES],
    ids=[f"{kind}[{i}]-{_rule_id(rule)}" for kind, i, rule in RULES],
)
def test_every_rule_is_needed(
    role: str,
    index: int,
    installation: Installation,
    start_kuberth: Callable[[], AbstractContextManager[Scenario]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without the rule the scenario fails, and because the API server refused what the rule
    grants (in the failing response, or in what Kuberth logged: its caches retry in the
    background), not for some other reason such as a slow machine."""
    name = "kuberth" if role == "ClusterRole" else "kuberth-leases"
    full = installation.manifest(role, name)
    rule = full["rules"][index]
    scope = installation.namespace if role == "Role" else ""
    without = copy.deepcopy(full)
    del without["rules"][index]
    installation.apply(without)
    try:
        installation.wait_allowed(rule, False, scope)
        with start_kuberth() as scenario, pytest.raises(ScenarioFailedError) as failed:
            run(scenario)
        said = [failed.value.detail, *(r.getMessage() for r in caplog.records)]
        said = [text.replace('\\"', '"') for text in said]  # quoted in a JSON body
        refusal = next((r for r in _refusals(rule) if any(r in text for text in said)), None)
        assert refusal, f"the scenario failed, but not for want of the rule: {failed.value}"
        installation.outcomes[f"{role}[{index}] {_rule_id(rule)}"] = (
            f"{failed.value.step} ({refusal})"
        )
        print(f"without {role} rule {index} ({_rule_id(rule)}): {failed.value}")
    finally:
        installation.apply(full)
        installation.wait_allowed(rule, True, scope)


def test_the_guard_confines_kuberths_writes(
    installation: Installation, admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    """RBAC lets Kuberth write RoleBindings, service accounts, tokens and namespaces anywhere;
    the admission policy in guard.yaml keeps it to namespaces labelled as its own."""
    from kuberth.storage.kubernetes.client import make_api_client

    kuberth = KubernetesApi(
        make_api_client(Settings(kubeconfig=installation.kubeconfig)), timeout=10, retry_after=5
    )
    core = client.CoreV1Api(admin_api)
    foreign, managed = f"kt-foreign-{secrets.token_hex(3)}", f"kt-managed-{secrets.token_hex(3)}"
    labels = {TEST_LABEL: "true"}
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=foreign, labels=labels))
    )
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=managed, labels={**labels, MANAGED_BY: "kuberth", OWNER_ID: str(new_id())}
            )
        )
    )
    core.create_namespaced_service_account(
        managed, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="someone"))
    )
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "kuberth:tenant",
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kuberth:1"}
        ],
    }

    def apply(path: str, body: dict[str, Any]) -> None:
        kuberth.request(
            "PATCH", path, query={"fieldManager": "kuberth"}, body=body, content_type=APPLY_PATCH
        )

    def refused(attempt: Callable[[], object]) -> str:
        with pytest.raises(ForbiddenError) as error:
            attempt()
        assert "ValidatingAdmissionPolicy" in error.value.message, error.value.message
        return error.value.message

    try:
        rolebindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings/{}"
        token = "/api/v1/namespaces/{}/serviceaccounts/{}/token"
        token_request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {},
        }
        # Allowed: its own objects in its own namespaces.
        apply(
            rolebindings.format(managed, "kuberth-tenant"),
            {**binding, "metadata": {"name": "kuberth-tenant"}},
        )
        # Refused: a token for another service account; any write in a namespace not Kuberth's;
        # other objects in its namespaces; deleting or relabelling a namespace not Kuberth's.
        refused(
            lambda: kuberth.request(
                "POST", token.format("kube-system", "default"), body=token_request
            )
        )
        refused(
            lambda: kuberth.request("POST", token.format(managed, "someone"), body=token_request)
        )
        refused(
            lambda: apply(
                rolebindings.format(foreign, "kuberth-tenant"),
                {**binding, "metadata": {"name": "kuberth-tenant"}},
            )
        )
        refused(
            lambda: apply(
                rolebindings.format(managed, "admin"), {**binding, "metadata": {"name": "admin"}}
            )
        )
        refused(lambda: kuberth.request("DELETE", f"/api/v1/namespaces/{foreign}"))
        refused(
            lambda: apply(
                f"/api/v1/namespaces/{foreign}",
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": foreign, "labels": {MANAGED_BY: "kuberth"}},
                },
            )
        )
        refused(
            lambda: kuberth.request(
                "POST",
                "/api/v1/namespaces",
                body={"metadata": {"name": f"kt-unlabelled-{secrets.token_hex(3)}"}},
            )
        )
    finally:
        kuberth.close()
        for name in (foreign, managed):
            core.delete_namespace(name)
