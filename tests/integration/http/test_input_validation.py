"""Bad input, through the real API and the pages: a 4xx that names the field, never a 500, and
nothing created or changed in Kubernetes.

Each case is one request against one tenant's namespace (shared by the module, with a Deployment,
Service, Ingress and app named ``base``/``shop`` in it). The namespace's objects are read with the
admin client before and after: a refused request must leave them exactly as they were.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from kuberth.devtools.github import StandInServer
from tests.integration.signin import sign_in

APPS = "apps.localhost"
NS = "{ns}"  # replaced by the tenant's namespace in every string of a case

Json = Any


@dataclass(frozen=True)
class Site:
    http: httpx.Client
    namespace: str
    admin: client.ApiClient


@pytest.fixture(scope="module")
def site(
    kubeconfig: Path,
    github: StandInServer,
    admin_api: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Site]:
    """One Kuberth server and one signed-in tenant for every case, with an object of each kind.

    Module-scoped: the per-test fixtures would sign a tenant up for each of the ~350 cases.
    """
    from kuberth.cluster.plane import free_port
    from kuberth.devtools.github import ThreadedServer
    from kuberth.http.app import create_app
    from kuberth.settings import Settings

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    github.state.redirect_uris.add(f"{url}/auth/github/callback")
    database = tmp_path_factory.mktemp("validation") / "kuberth.db"
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
    server = ThreadedServer(create_app(settings), port=port).start()
    login = f"iv{secrets.token_hex(4)}"
    with httpx.Client(base_url=url, timeout=120) as http:
        signed_in = sign_in(http, github, login=login, user_id=10**9 + secrets.randbelow(10**8))
        assert signed_in.status_code == 302
        base = f"/api/v1/namespaces/{login}"
        for path, body in (
            ("deployments", {"name": "base", "image": "nginx:1.27", "port": 8080}),
            ("services", {"name": "base", "app": "base", "ports": [{"port": 80}]}),
            (
                "ingresses",
                {
                    "name": "base",
                    "host": f"base-{login}.{APPS}",
                    "paths": [{"service": "base", "port": 80}],
                },
            ),
            ("apps", {"name": "shop", "image": "nginx:1.27"}),
        ):
            created = http.post(f"{base}/{path}", json=body)
            assert created.status_code == 201, created.text
        try:
            yield Site(http, login, admin_api)
        finally:
            server.stop()
            client.CoreV1Api(admin_api).delete_namespace(login)


def _fill(value: Json, namespace: str) -> Json:
    """``value`` with every ``{ns}`` in its strings (keys too) replaced by the namespace."""
    if isinstance(value, str):
        return value.replace(NS, namespace)
    if isinstance(value, list):
        return [_fill(v, namespace) for v in value]
    if isinstance(value, dict):
        return {_fill(k, namespace): _fill(v, namespace) for k, v in value.items()}
    return value


def _with(obj: Json, path: str, value: Json) -> Json:
    """A copy of ``obj`` with the dotted ``path`` (list indexes as numbers) set to ``value``."""
    result = copy.deepcopy(obj)
    *parents, last = path.split(".")
    target = result
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return result


_RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
DEPLOYMENT: Json = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "nd", "labels": {"app": "nd"}},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "nd"}},
        "template": {
            "metadata": {"labels": {"app": "nd"}},
            "spec": {
                "containers": [
                    {
                        "name": "nd",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 8080}],
                        "securityContext": _RESTRICTED,
                    }
                ]
            },
        },
    },
}
SERVICE: Json = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "ns1"},
    "spec": {"selector": {"app": "nd"}, "ports": [{"port": 80, "targetPort": 8080}]},
}
INGRESS: Json = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "ni"},
    "spec": {
        "rules": [
            {
                "host": f"ni-{NS}.{APPS}",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "base", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ]
    },
}
CONCISE_DEPLOYMENT: Json = {"name": "cd", "image": "nginx:1.27"}
CONCISE_SERVICE: Json = {"name": "cs", "app": "base", "ports": [{"port": 80}]}
CONCISE_INGRESS: Json = {
    "name": "ci",
    "host": f"ci-{NS}.{APPS}",
    "paths": [{"path": "/", "service": "base", "port": 80}],
}
APP: Json = {"name": "app2", "image": "nginx:1.27"}

CONTAINER = "spec.template.spec.containers.0"
K8S_CONTAINER = "spec.template.spec.containers[0]"
HUGE_ENV = {f"VAR_{i}": "x" * 30_000 for i in range(80)}  # 2.4 MB: more than etcd stores


@dataclass(frozen=True)
class Case:
    """One bad request and the error it must get.

    ``field``: the field the error must name; ending in ``*``, a prefix (Kubernetes' own paths,
    where what follows is Kubernetes' business); None, the error is about the body as a whole
    (too large, not JSON, not an object) or, for a 404, about the path.
    """

    id: str
    method: str
    path: str
    body: Json
    field: str | None
    status: int = 422
    content: bytes | None = None  # sent as is, instead of ``body`` as JSON
    content_type: str = "application/json"


def _posts(kind: str, base: Json, rows: list[tuple[Any, ...]], prefix: str = "") -> list[Case]:
    """POSTs of ``base`` with one value changed, a row each: (id, dotted path, value, field[,
    status])."""
    return [
        Case(f"{kind}-{prefix}{case_id}", "POST", kind, _with(base, path, value), *expected)
        for case_id, path, value, *expected in rows
    ]


def _requests(method: str, path: str, rows: list[tuple[Any, ...]], prefix: str) -> list[Case]:
    """Requests of one method and path, a row each: (id, body, field[, status])."""
    return [
        Case(f"{prefix}-{case_id}", method, path, body, *expected)
        for case_id, body, *expected in rows
    ]


CONCISE_DEPLOYMENT_CASES = [
    Case("deployments-concise-name-missing", "POST", "deployments", {"image": "x"}, "name"),
    *_posts(
        "deployments",
        CONCISE_DEPLOYMENT,
        [
            ("name-uppercase", "name", "Web", "name"),
            ("name-64-chars", "name", "a" * 64, "name"),
            ("name-unicode", "name", "wéb", "name"),
            ("name-trailing-newline", "name", "web\n", "name"),
            ("name-null-byte", "name", "we\x00b", "name"),
            ("name-empty", "name", "", "name"),
            ("name-leading-hyphen", "name", "-web", "name"),
            ("name-number", "name", 5, "name"),
            ("name-list", "name", ["web"], "name"),
            ("image-empty", "image", "", "image"),
            ("image-upper-case-with-space", "image", "UPPER CASE", "image"),
            ("image-space", "image", "nginx latest", "image"),
            ("image-newline", "image", "nginx\n", "image"),
            ("image-null-byte", "image", "nginx\x00", "image"),
            ("image-list", "image", ["nginx"], "image"),
            ("image-600-chars", "image", "a" * 600, "image"),
            ("replicas-negative", "replicas", -1, "replicas"),
            ("replicas-billion", "replicas", 10**9, "replicas"),
            ("replicas-word", "replicas", "three", "replicas"),
            ("replicas-fraction", "replicas", 1.5, "replicas"),
            ("replicas-null", "replicas", None, "replicas"),
            ("port-0", "port", 0, "port"),
            ("port-70000", "port", 70000, "port"),
            ("port-name", "port", "http", "port"),
            ("env-name-leading-digit", "env", {"1BAD": "v"}, "env.0.name"),
            ("env-name-with-equals", "env", {"A=B": "v"}, "env.0.name"),
            ("env-name-empty", "env", {"": "v"}, "env.0.name"),
            ("env-name-space", "env", {"A B": "v"}, "env.0.name"),
            ("env-value-number", "env", {"A": 5}, "env.0.value"),
            ("env-value-too-long", "env", {"A": "x" * 40_000}, "env.0.value"),
            ("env-string", "env", "A=B", "env"),
            ("env-item-without-name", "env", [{"value": "x"}], "env.0.name"),
            ("cpu-lots", "resources.requests.cpu", "lots", "resources.requests.cpu"),
            ("memory-negative", "resources.limits.memory", "-1Gi", "resources.limits.memory"),
            ("resource-unknown", "resources.requests.gpu", "1", "resources.requests.gpu"),
            ("resources-list", "resources", ["cpu"], "resources"),
            (
                "requests-above-limits",
                "resources",
                {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
                f"{K8S_CONTAINER}.resources.requests*",
            ),
            ("command-string", "command", "sleep 1", "command"),
            ("args-numbers", "args", [1, 2], "args.0"),
            ("unknown-field", "colour", "red", "colour"),
            ("huge-env", "env", HUGE_ENV, None),
        ],
        prefix="concise-",
    ),
]

CONCISE_SERVICE_CASES = _posts(
    "services",
    CONCISE_SERVICE,
    [
        ("name-uppercase", "name", "Web", "name"),
        ("name-dot", "name", ".", "name"),
        ("app-with-space", "app", "my app", "app"),
        ("ports-empty", "ports", [], "ports"),
        ("ports-object", "ports", {"port": 80}, "ports"),
        ("port-0", "ports.0.port", 0, "ports.0.port"),
        ("port-70000", "ports.0.port", 70000, "ports.0.port"),
        ("port-name", "ports.0.port", "http", "ports.0.port"),
        ("target-port-0", "ports.0.target_port", 0, "ports.0.target_port"),
        ("target-port-70000", "ports.0.target_port", 70000, "ports.0.target_port"),
        ("port-name-64-chars", "ports.0.name", "a" * 64, "ports.0.name"),
        ("protocol-sctp", "ports.0.protocol", "SCTP", "ports.0.protocol"),
        ("type-unknown", "type", "ExternalName", "type"),
    ],
    prefix="concise-",
)

BAD_HOSTS = [
    ("wildcard", f"*.{NS}.{APPS}"),
    ("double-dot", f"a..b-{NS}.{APPS}"),
    ("uppercase", f"Web-{NS}.{APPS}"),
    ("ip", "10.0.0.1"),
    ("ipv6", "::1"),
    ("with-port", f"web-{NS}.{APPS}:8080"),
    ("with-scheme", f"http://web-{NS}.{APPS}"),
    ("label-64-chars", f"{'a' * 64}.{NS}.{APPS}"),
    ("trailing-newline", f"web-{NS}.{APPS}\n"),
    ("trailing-dot", f"web-{NS}.{APPS}."),
    ("empty", ""),
]

CONCISE_INGRESS_CASES = _posts(
    "ingresses",
    CONCISE_INGRESS,
    [
        *[(f"host-{name}", "host", host, "host") for name, host in BAD_HOSTS],
        ("host-number", "host", 5, "host"),
        ("host-outside-subdomain", "host", "example.com", "spec.rules[0].host", 403),
        ("path-relative", "paths.0.path", "api", "paths.0.path"),
        ("path-double-slash", "paths.0.path", "/a//b", "paths.0.path"),
        ("path-dot-dot", "paths.0.path", "/a/../b", "paths.0.path"),
        ("path-space", "paths.0.path", "/a b", "paths.0.path"),
        ("paths-empty", "paths", [], "paths"),
        ("service-uppercase", "paths.0.service", "Base", "paths.0.service"),
        ("port-0", "paths.0.port", 0, "paths.0.port"),
        ("tls-secret-underscore", "tls_secret", "bad_secret", "tls_secret"),
        ("class-unknown", "ingress_class", "traefik", "spec.ingressClassName"),
    ],
    prefix="concise-",
)

NATIVE_DEPLOYMENT_CASES = _posts(
    "deployments",
    DEPLOYMENT,
    [
        ("label-key-two-slashes", "metadata.labels", {"a/b/c": "x"}, "metadata.labels"),
        ("label-key-64-chars", "metadata.labels", {"a" * 64: "x"}, "metadata.labels"),
        ("label-value-space", "metadata.labels", {"tier": "a b"}, "metadata.labels"),
        ("label-value-64-chars", "metadata.labels", {"tier": "a" * 64}, "metadata.labels"),
        ("label-value-number", "metadata.labels", {"tier": 5}, "metadata.labels"),
        ("labels-list", "metadata.labels", ["a"], "metadata.labels"),
        ("annotation-300-kib", "metadata.annotations.a", "x" * 300 * 1024, "metadata.annotations"),
        ("annotation-key-space", "metadata.annotations", {"a b": "x"}, "metadata.annotations"),
        ("annotation-value-number", "metadata.annotations.a", 5, "metadata.annotations"),
        ("annotations-list", "metadata.annotations", ["a"], "metadata.annotations"),
        ("annotation-2-mib", "metadata.annotations.a", "x" * 2 * 1024**2, None),
        ("name-uppercase", "metadata.name", "Web", "metadata.name"),
        ("name-254-chars", "metadata.name", "a" * 254, "metadata.name"),
        ("name-dot", "metadata.name", ".", "metadata.name"),
        ("name-dot-dot", "metadata.name", "..", "metadata.name"),
        ("name-unicode", "metadata.name", "wéb", "metadata.name"),
        ("name-trailing-newline", "metadata.name", "nd\n", "metadata.name"),
        ("name-null-byte", "metadata.name", "n\x00d", "metadata.name"),
        ("name-number", "metadata.name", 5, "metadata.name"),
        ("name-missing", "metadata", {"labels": {"app": "nd"}}, "metadata.name"),
        ("metadata-list", "metadata", ["nd"], "metadata"),
        ("metadata-string", "metadata", "nd", "metadata"),
        ("namespace-other", "metadata.namespace", "kube-system", "metadata.namespace"),
        ("kind-service", "kind", "Service", "kind"),
        ("api-version-v2", "apiVersion", "apps/v2", "apiVersion"),
        ("spec-list", "spec", [], "spec"),
        ("replicas-negative", "spec.replicas", -1, "spec.replicas"),
        ("replicas-billion", "spec.replicas", 10**9, "spec.replicas"),
        ("replicas-word", "spec.replicas", "three", "spec.replicas"),
        ("replicas-true", "spec.replicas", True, "spec.replicas"),
        ("containers-object", "spec.template.spec.containers", {}, "spec.template.spec.containers"),
        (
            "container-port-0",
            f"{CONTAINER}.ports.0.containerPort",
            0,
            f"{K8S_CONTAINER}.ports[0].containerPort*",
        ),
        (
            "container-port-70000",
            f"{CONTAINER}.ports.0.containerPort",
            70000,
            f"{K8S_CONTAINER}.ports[0].containerPort*",
        ),
        (
            "container-port-name",
            f"{CONTAINER}.ports.0.containerPort",
            "http",
            "spec.template.spec.containers.ports.containerPort",
        ),
        (
            "port-name-too-long",
            f"{CONTAINER}.ports.0.name",
            "a-very-long-port-name",
            f"{K8S_CONTAINER}.ports[0].name*",
        ),
        ("env-name-with-equals", f"{CONTAINER}.env", [{"name": "A=B"}], f"{K8S_CONTAINER}.env*"),
        ("env-name-empty", f"{CONTAINER}.env", [{"name": ""}], f"{K8S_CONTAINER}.env*"),
        ("image-empty", f"{CONTAINER}.image", "", f"{K8S_CONTAINER}.image*"),
        (
            "cpu-lots",
            f"{CONTAINER}.resources.requests.cpu",
            "lots",
            f"{K8S_CONTAINER}.resources.requests[cpu]",
        ),
        (
            "memory-negative",
            f"{CONTAINER}.resources.limits.memory",
            "-1Gi",
            f"{K8S_CONTAINER}.resources.limits*",
        ),
        ("container-name-uppercase", f"{CONTAINER}.name", "ND", f"{K8S_CONTAINER}.name*"),
        (
            "selector-mismatch",
            "spec.template.metadata.labels",
            {"app": "other"},
            "spec.template.metadata.labels*",
        ),
        (
            "huge-env",
            f"{CONTAINER}.env",
            [{"name": k, "value": v} for k, v in HUGE_ENV.items()],
            None,
        ),
    ],
    prefix="native-",
)

NATIVE_SERVICE_CASES = _posts(
    "services",
    SERVICE,
    [
        ("name-uppercase", "metadata.name", "Svc", "metadata.name"),
        ("name-dot", "metadata.name", ".", "metadata.name"),
        ("port-0", "spec.ports.0.port", 0, "spec.ports[0].port*"),
        ("port-70000", "spec.ports.0.port", 70000, "spec.ports[0].port*"),
        ("port-name", "spec.ports.0.port", "http", "spec.ports.port"),
        ("target-port-70000", "spec.ports.0.targetPort", 70000, "spec.ports[0].targetPort*"),
        (
            "target-port-name-too-long",
            "spec.ports.0.targetPort",
            "a-very-long-port-name",
            "spec.ports[0].targetPort*",
        ),
        (
            "target-port-name-underscore",
            "spec.ports.0.targetPort",
            "a_b",
            "spec.ports[0].targetPort*",
        ),
        ("selector-value-space", "spec.selector", {"app": "a b"}, "spec.selector*"),
        ("ports-object", "spec.ports", {"port": 80}, "spec.ports"),
        ("spec-list", "spec", [], "spec"),
        ("type-number", "spec.type", 5, "spec.type"),
        ("type-node-port", "spec.type", "NodePort", "spec.type", 403),
        ("external-ips", "spec.externalIPs", ["1.2.3.4"], "spec.externalIPs", 403),
    ],
    prefix="native-",
)

RULE_HOST = "spec.rules.0.host"
PATH = "spec.rules.0.http.paths.0"
K8S_PATH = "spec.rules[0].http.paths[0]"
NATIVE_INGRESS_CASES = _posts(
    "ingresses",
    INGRESS,
    [
        *[
            (f"host-{name}", RULE_HOST, host, "spec.rules[0].host")
            for name, host in BAD_HOSTS
            if name != "empty"  # no host is a catch-all rule: "host-missing"
        ],
        ("host-missing", RULE_HOST, None, "spec.rules[0].host"),
        ("host-number", RULE_HOST, 5, "spec.rules[0].host"),
        ("host-list", RULE_HOST, ["x"], "spec.rules[0].host"),
        ("host-outside-subdomain", RULE_HOST, "example.com", "spec.rules[0].host", 403),
        ("rules-object", "spec.rules", {"host": "x"}, "spec.rules"),
        ("rules-empty", "spec.rules", [], "spec.rules"),
        ("rule-string", "spec.rules", ["x"], "spec.rules[0]"),
        ("spec-list", "spec", [], "spec"),
        ("annotations-list", "metadata.annotations", ["a"], "metadata.annotations"),
        (
            "annotation-snippet",
            "metadata.annotations",
            {"nginx.ingress.kubernetes.io/server-snippet": "x"},
            "metadata.annotations",
        ),
        ("tls-object", "spec.tls", {"hosts": []}, "spec.tls"),
        ("tls-entry-string", "spec.tls", ["x"], "spec.tls[0]"),
        ("tls-hosts-string", "spec.tls", [{"hosts": "x"}], "spec.tls[0].hosts"),
        (
            "tls-host-uppercase",
            "spec.tls",
            [{"hosts": [f"NI-{NS}.{APPS}"]}],
            "spec.tls[0].hosts[0]",
        ),
        ("class-unknown", "spec.ingressClassName", "traefik", "spec.ingressClassName"),
        ("default-backend", "spec.defaultBackend", {"service": {}}, "spec.defaultBackend"),
        ("path-relative", f"{PATH}.path", "api", f"{K8S_PATH}.path*"),
        ("path-double-slash", f"{PATH}.path", "/a//b", f"{K8S_PATH}.path*"),
        ("path-type-unknown", f"{PATH}.pathType", "Regex", f"{K8S_PATH}.pathType*"),
        ("backend-port-0", f"{PATH}.backend.service.port", {"number": 0}, f"{K8S_PATH}.backend*"),
        (
            "backend-port-name-too-long",
            f"{PATH}.backend.service.port",
            {"name": "a-very-long-port-name"},
            f"{K8S_PATH}.backend.service.port.name*",
        ),
        (
            "backend-service-uppercase",
            f"{PATH}.backend.service.name",
            "Base",
            f"{K8S_PATH}.backend.service.name*",
        ),
    ],
    prefix="native-",
)

APP_CASES = _posts(
    "apps",
    APP,
    [
        ("name-uppercase", "name", "Shop", "name"),
        ("name-64-chars", "name", "a" * 64, "name"),
        ("name-unicode", "name", "shöp", "name"),
        ("name-trailing-newline", "name", "shop\n", "name"),
        ("name-too-long-for-the-default-host", "name", "a" * 60, "name"),
        ("image-empty", "image", "", "image"),
        ("image-space", "image", "UPPER CASE", "image"),
        ("image-newline", "image", "nginx\nx", "image"),
        ("replicas-negative", "replicas", -1, "replicas"),
        ("replicas-billion", "replicas", 10**9, "replicas"),
        ("replicas-word", "replicas", "three", "replicas"),
        ("port-0", "port", 0, "port"),
        ("port-70000", "port", 70000, "port"),
        ("port-name", "port", "http", "port"),
        ("env-name-leading-digit", "env", {"1BAD": "x"}, "env.0.name"),
        ("env-name-with-equals", "env", {"A=B": "x"}, "env.0.name"),
        ("env-list-of-strings", "env", ["A=B"], "env.0"),
        *[(f"host-{name}", "host", host, "host") for name, host in BAD_HOSTS],
        ("host-outside-subdomain", "host", "example.com", "host", 403),
        ("host-of-another-namespace", "host", f"x-someone.{APPS}", "host", 403),
        ("unknown-field", "labels", {"a": "b"}, "labels"),
        ("huge-env", "env", HUGE_ENV, None),
    ],
)

APP_PATCH_CASES = _requests(
    "PATCH",
    "apps/shop",
    [
        ("image-empty", {"image": ""}, "image"),
        ("image-space", {"image": "a b"}, "image"),
        ("replicas-negative", {"replicas": -1}, "replicas"),
        ("replicas-billion", {"replicas": 10**9}, "replicas"),
        ("replicas-word", {"replicas": "three"}, "replicas"),
        ("port-70000", {"port": 70000}, "port"),
        ("env-name-leading-digit", {"env": {"1BAD": "x"}}, "env.0.name"),
        ("host-wildcard", {"host": f"*.{NS}.{APPS}"}, "host"),
        ("host-ip", {"host": "10.0.0.1"}, "host"),
        ("host-uppercase", {"host": f"SHOP-{NS}.{APPS}"}, "host"),
        ("host-outside-subdomain", {"host": "example.com"}, "host", 403),
        ("name", {"name": "other"}, "name"),
        ("huge-env", {"env": HUGE_ENV}, None),
        ("body-list", [], None),
    ],
    prefix="apps-patch",
)

SCALE_CASES = _requests(
    "POST",
    "deployments/base/scale",
    [
        ("replicas-negative", {"replicas": -1}, "replicas"),
        ("replicas-billion", {"replicas": 10**9}, "replicas"),
        ("replicas-word", {"replicas": "three"}, "replicas"),
        ("replicas-missing", {}, "replicas"),
        ("body-list", [3], None),
    ],
    prefix="scale",
)

BASE_DEPLOYMENT = _with(
    _with(_with(DEPLOYMENT, "metadata.name", "base"), "spec.selector.matchLabels", {"app": "base"}),
    "spec.template.metadata.labels",
    {"app": "base"},
)
REPLACE_CASES = [
    *_requests(
        "PUT",
        "deployments/base",
        [
            ("name-mismatch", DEPLOYMENT, "metadata.name"),
            ("replicas-billion", _with(BASE_DEPLOYMENT, "spec.replicas", 10**9), "spec.replicas"),
            (
                "label-key-two-slashes",
                _with(BASE_DEPLOYMENT, "metadata.labels", {"a/b/c": "x"}),
                "metadata.labels",
            ),
            ("concise-port-0", {"name": "base", "image": "nginx", "port": 0}, "port"),
            ("body-list", [], None),
            ("body-string", "base", None),
        ],
        prefix="put-deployment",
    ),
    Case(
        "put-service-spec-list",
        "PUT",
        "services/base",
        _with(_with(SERVICE, "metadata.name", "base"), "spec", []),
        "spec",
    ),
    Case(
        "put-ingress-host-ip",
        "PUT",
        "ingresses/base",
        _with(_with(INGRESS, "metadata.name", "base"), RULE_HOST, "10.0.0.1"),
        "spec.rules[0].host",
    ),
]

CONTAINER_PORT_PATCH = {
    "spec": {
        "template": {
            "spec": {"containers": [{"name": "base", "ports": [{"containerPort": "http"}]}]}
        }
    }
}
PATCH_CASES = [
    *_requests(
        "PATCH",
        "deployments/base",
        [
            ("replicas-billion", {"spec": {"replicas": 10**9}}, "spec.replicas"),
            ("replicas-word", {"spec": {"replicas": "three"}}, "spec.replicas"),
            ("replicas-negative", {"spec": {"replicas": -1}}, "spec.replicas"),
            ("metadata-string", {"metadata": "x"}, "metadata"),
            ("metadata-null", {"metadata": None}, "metadata"),
            ("spec-list", {"spec": []}, "spec"),
            ("kind", {"kind": "Service"}, "kind"),
            ("label-key-two-slashes", {"metadata": {"labels": {"a/b/c": "x"}}}, "metadata.labels"),
            (
                "annotation-300-kib",
                {"metadata": {"annotations": {"a": "x" * 300 * 1024}}},
                "metadata.annotations",
            ),
            (
                "container-port-word",
                CONTAINER_PORT_PATCH,
                "spec.template.spec.containers.ports.containerPort",
            ),
            ("body-list", [], None),
            ("huge", {"metadata": {"annotations": {"a": "x" * 2 * 1024**2}}}, None),
        ],
        prefix="patch-deployment",
    ),
    *_requests(
        "PATCH",
        "services/base",
        [
            ("spec-list", {"spec": []}, "spec"),
            ("metadata-null", {"metadata": None}, "metadata"),
            ("type-list", {"spec": {"type": ["NodePort"]}}, "spec.type"),
            ("port-0", {"spec": {"ports": [{"port": 0}]}}, "spec.ports[0].port*"),
            ("port-word", {"spec": {"ports": [{"port": "http"}]}}, "spec.ports.port"),
        ],
        prefix="patch-service",
    ),
    *_requests(
        "PATCH",
        "ingresses/base",
        [
            ("rules-object", {"spec": {"rules": {}}}, "spec.rules"),
            (
                "host-uppercase",
                {"spec": {"rules": [{"host": f"BASE-{NS}.{APPS}"}]}},
                "spec.rules[0].host",
            ),
            ("annotations-list", {"metadata": {"annotations": []}}, "metadata.annotations"),
        ],
        prefix="patch-ingress",
    ),
]

# An object named in the path that no Kubernetes object can be named: a 404 (nothing by that
# name can exist), never a request to Kubernetes for `.` (the collection) or `..` (the namespace).
BAD_PATH_NAMES = [
    ("dot", "%2E"),
    ("dot-dot", "%2E%2E"),
    ("uppercase", "Base"),
    ("unicode", "b%C3%A4se"),
    ("trailing-newline", "base%0A"),
    ("null-byte", "ba%00se"),
    ("space", "ba%20se"),
    ("question-mark", "base%3Fx%3Dy"),
    ("300-chars", "a" * 300),
]
PATH_NAME_CASES = [
    Case(f"{method.lower()}-{kind}-{case_id}", method, f"{kind}/{name}{action}", body, None, 404)
    for case_id, name in BAD_PATH_NAMES
    for method, kind, action, body in (
        ("GET", "deployments", "", None),
        ("DELETE", "services", "", None),
        ("PATCH", "ingresses", "", {"metadata": {"labels": {"a": "b"}}}),
        ("GET", "apps", "", None),
        ("DELETE", "apps", "", None),
        ("PUT", "deployments", "", CONCISE_DEPLOYMENT),
        ("POST", "deployments", "/scale", {"replicas": 1}),
        ("POST", "deployments", "/restart", None),
    )
]

MERGE_PATCH = "application/merge-patch+json"
MALFORMED_CASES = [
    Case("deployments-json-truncated", "POST", "deployments", None, None, 400, b"{"),
    Case("apps-json-truncated", "POST", "apps", None, None, 400, b'{"name": "x"'),
    Case("apps-json-raw-null-byte", "POST", "apps", None, None, 400, b'{"name": "a\x00b"}'),
    Case("apps-json-not-utf8", "POST", "apps", None, None, 400, b'{"name": "\xff"}'),
    Case("patch-json-truncated", "PATCH", "services/base", None, None, 400, b"{", MERGE_PATCH),
    Case("apps-body-list", "POST", "apps", [APP], None),
    Case("apps-body-null", "POST", "apps", None, None, 422, b"null"),
    Case("deployments-body-list", "POST", "deployments", [CONCISE_DEPLOYMENT], None),
    Case("deployments-body-number", "POST", "deployments", 5, None),
    Case("services-body-string", "POST", "services", "web", None),
    Case("ingresses-body-null", "POST", "ingresses", None, None, 422, b"null"),
]

API_CASES = [
    *CONCISE_DEPLOYMENT_CASES,
    *CONCISE_SERVICE_CASES,
    *CONCISE_INGRESS_CASES,
    *NATIVE_DEPLOYMENT_CASES,
    *NATIVE_SERVICE_CASES,
    *NATIVE_INGRESS_CASES,
    *APP_CASES,
    *APP_PATCH_CASES,
    *SCALE_CASES,
    *REPLACE_CASES,
    *PATCH_CASES,
    *PATH_NAME_CASES,
    *MALFORMED_CASES,
]


def _snapshot(site: Site) -> dict[str, Any]:
    """What the tenant's objects are: names, labels, annotations and specs (not status, which
    controllers change on their own)."""
    serialize = site.admin.sanitize_for_serialization
    lists: dict[str, Any] = {
        "deployments": client.AppsV1Api(site.admin).list_namespaced_deployment(site.namespace),
        "services": client.CoreV1Api(site.admin).list_namespaced_service(site.namespace),
        "ingresses": client.NetworkingV1Api(site.admin).list_namespaced_ingress(site.namespace),
    }
    result: dict[str, Any] = {}
    for kind, items in lists.items():
        for item in items.items:
            meta = item.metadata
            annotations = {
                k: v
                for k, v in (meta.annotations or {}).items()
                if not k.startswith("deployment.kubernetes.io/")
            }
            result[f"{kind}/{meta.name}"] = serialize(
                {"labels": meta.labels, "annotations": annotations, "spec": item.spec}
            )
    return result


#: The module's own objects: every case aims at these, so each must find them all in place (a
#: case that removed one would leave the later ones checking less than they say).
MODULE_OBJECTS = {
    f"{kind}/{name}"
    for kind in ("deployments", "services", "ingresses")
    for name in ("base", "shop")
}


def _before(site: Site) -> dict[str, Any]:
    """The snapshot before a case, which must hold the module's objects."""
    before = _snapshot(site)
    missing = MODULE_OBJECTS - set(before)
    assert not missing, f"the module's objects are gone: {sorted(missing)}"
    return before


def _remove_new(site: Site, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Delete what a failed case made, so the next cases start from the module's objects."""
    for key in set(after) - set(before):
        kind, name = key.split("/")
        site.http.delete(f"/api/v1/namespaces/{site.namespace}/{kind}/{name}")


def _send(site: Site, case: Case) -> httpx.Response:
    url = f"/api/v1/namespaces/{site.namespace}/{_fill(case.path, site.namespace)}"
    if case.content is not None:
        headers = {"content-type": case.content_type}
        return site.http.request(case.method, url, content=case.content, headers=headers)
    if case.body is None:
        return site.http.request(case.method, url)
    headers = {"content-type": MERGE_PATCH} if case.method == "PATCH" else {}
    return site.http.request(
        case.method, url, json=_fill(case.body, site.namespace), headers=headers
    )


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in API_CASES])
def test_bad_input_is_a_4xx_naming_the_field_and_changes_nothing(site: Site, case: Case) -> None:
    before = _before(site)
    try:
        response = _send(site, case)
    finally:
        after = _snapshot(site)
        _remove_new(site, before, after)
    assert response.status_code == case.status, response.text[:1000]
    body = response.json()
    assert set(body) == {"error", "message", "field"}, body
    assert body["message"], body
    if case.field is not None and case.field.endswith("*"):
        assert (body["field"] or "").startswith(case.field[:-1]), body
    else:
        assert body["field"] == case.field, body
    if case.status == 422 and case.field is None:  # about the body as a whole: it says so
        assert re.search(r"body|object|bytes", body["message"]), body
    assert after == before, "a refused request changed the namespace's objects"


def test_a_body_over_the_servers_limit_is_413_before_it_is_read(site: Site) -> None:
    """Past 4 MiB the server does not even buffer the body (the 1 MiB object check never runs)."""
    before = _before(site)
    response = site.http.post(
        f"/api/v1/namespaces/{site.namespace}/deployments",
        content=b"{" + b" " * 5 * 1024**2 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"] == "too_large"
    assert _snapshot(site) == before


# -- the pages' forms ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FormCase:
    """A form post with one bad value; ``field``: the form field the error is shown at ("_": at
    the top of the form)."""

    id: str
    path: str
    form: dict[str, str]
    field: str
    status: int = 422


def _app_form(**values: str) -> dict[str, str]:
    return {"name": "app3", "image": "nginx:1.27", "replicas": "1", "port": "8080", **values}


def _deployment_form(**values: str) -> dict[str, str]:
    return {"name": "fd", "image": "nginx:1.27", "replicas": "1", **values}


def _service_form(**values: str) -> dict[str, str]:
    return {"name": "fs", "app": "base", "port": "80", **values}


def _ingress_form(**values: str) -> dict[str, str]:
    return {"name": "fi", "host": f"fi-{NS}.{APPS}", "service": "base", "port": "80", **values}


FORM_CASES = [
    FormCase("app-name-uppercase", "apps", _app_form(name="Shop"), "name"),
    FormCase("app-name-trailing-hyphen", "apps", _app_form(name="shop-"), "name"),
    FormCase("app-name-too-long-for-the-default-host", "apps", _app_form(name="a" * 60), "name"),
    FormCase("app-image-space", "apps", _app_form(image="UPPER CASE"), "image"),
    FormCase("app-replicas-word", "apps", _app_form(replicas="three"), "replicas"),
    FormCase("app-replicas-billion", "apps", _app_form(replicas=str(10**9)), "replicas"),
    FormCase("app-port-70000", "apps", _app_form(port="70000"), "port"),
    FormCase("app-host-wildcard", "apps", _app_form(host=f"*.{NS}.{APPS}"), "host"),
    FormCase("app-host-ip", "apps", _app_form(host="10.0.0.1"), "host"),
    FormCase("app-host-outside-subdomain", "apps", _app_form(host="example.com"), "host"),
    FormCase("app-env-name-leading-digit", "apps", _app_form(env="1BAD=x"), "env"),
    FormCase("app-env-line-without-equals", "apps", _app_form(env="JUSTAKEY"), "env"),
    FormCase("app-update-replicas-word", "apps/shop", {"replicas": "three"}, "replicas"),
    FormCase("app-update-host-uppercase", "apps/shop", {"host": f"SHOP-{NS}.{APPS}"}, "host"),
    FormCase("app-update-image-space", "apps/shop", {"image": "a b"}, "image"),
    FormCase("deployment-name-uppercase", "deployments", _deployment_form(name="Web"), "name"),
    FormCase("deployment-image-newline", "deployments", _deployment_form(image="a\nb"), "image"),
    FormCase(
        "deployment-replicas-negative", "deployments", _deployment_form(replicas="-1"), "replicas"
    ),
    FormCase("deployment-port-name", "deployments", _deployment_form(port="http"), "port"),
    FormCase("service-name-uppercase", "services", _service_form(name="Svc"), "name"),
    FormCase("service-port-0", "services", _service_form(port="0"), "port"),
    FormCase(
        "service-target-port-70000", "services", _service_form(target_port="70000"), "target_port"
    ),
    FormCase("service-app-space", "services", _service_form(app="a b"), "app"),
    FormCase("ingress-host-uppercase", "ingresses", _ingress_form(host=f"FI-{NS}.{APPS}"), "host"),
    FormCase(
        "ingress-host-with-port", "ingresses", _ingress_form(host=f"fi-{NS}.{APPS}:80"), "host"
    ),
    FormCase("ingress-path-relative", "ingresses", _ingress_form(path="api"), "path"),
    FormCase("ingress-service-uppercase", "ingresses", _ingress_form(service="Base"), "service"),
    FormCase("ingress-port-0", "ingresses", _ingress_form(port="0"), "port"),
    FormCase("edit-service-not-json", "services/base/edit", {"manifest": "{"}, "manifest"),
    FormCase("edit-service-list", "services/base/edit", {"manifest": "[]"}, "manifest"),
    FormCase(
        "edit-service-spec-list",
        "services/base/edit",
        {"manifest": '{"kind": "Service", "metadata": {"name": "base"}, "spec": []}'},
        "manifest",
    ),
    FormCase(
        "edit-deployment-replicas-word",
        "deployments/base/edit",
        {"manifest": '{"kind": "Deployment", "metadata": {"name": "base"}, "spec": [1]}'},
        "manifest",
    ),
    FormCase("delete-service-dot", "services/%2E/delete", {"confirm": "yes"}, "", status=404),
    FormCase(
        "delete-deployment-dot-dot", "deployments/%2E%2E/delete", {"confirm": "yes"}, "", status=404
    ),
    FormCase("edit-ingress-dot", "ingresses/%2E/edit", {"manifest": "{}"}, "", status=404),
    FormCase("restart-app-dot", "apps/%2E/restart", {}, "", status=404),
]


def _csrf(site: Site) -> str:
    page = site.http.get("/dashboard")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in FORM_CASES])
def test_bad_form_input_is_shown_at_its_field_and_changes_nothing(
    site: Site, case: FormCase
) -> None:
    form = {k: _fill(v, site.namespace) for k, v in case.form.items()}
    before = _before(site)
    try:
        response = site.http.post(
            f"/namespaces/{site.namespace}/{case.path}", data={**form, "csrf": _csrf(site)}
        )
    finally:
        after = _snapshot(site)
        _remove_new(site, before, after)
    assert response.status_code == case.status, response.text[:2000]
    if case.field:
        assert f'id="e-{case.field}"' in response.text, response.text[:4000]
    assert after == before, "a refused form changed the namespace's objects"
