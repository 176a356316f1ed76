"""Kubernetes answering 429: Kuberth waits as Retry-After asks, then succeeds or says 503.

The 429s are real: API Priority and Fairness gets a priority level of one seat for the tenant's
impersonated user, with "Reject" as its answer when the seat is taken. A test-side validating
admission webhook that holds a request until released keeps the seat taken for as long as the
test needs (the seat is held until the request has been handled, admission included).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import ssl
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kubernetes import client

from kuberth.cluster.pki import create_pki
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer
from kuberth.services.builders.tenant import tenant_user
from tests.integration.conftest import KuberthFactory
from tests.integration.signin import sign_in

HOLD_LABEL = "kuberth.dev/hold"


class HoldingWebhook:
    """An admission webhook that allows everything, after holding requests until released."""

    def __init__(self, directory: Path) -> None:
        self.pki = create_pki(directory)  # its serving certificate is valid for 127.0.0.1
        self.port = free_port()
        self.released = threading.Event()
        self.holding = threading.Event()
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                webhook.holding.set()
                webhook.released.wait(timeout=60)
                body = json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": {"uid": review["request"]["uid"], "allowed": True},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.serving_cert, self.pki.serving_key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HoldingWebhook:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def configuration(self, name: str) -> dict[str, Any]:
        """Holds creations of ConfigMaps labelled with :data:`HOLD_LABEL` (only the test's)."""
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": f"{name}.hold.kuberth.dev",
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{self.port}/hold",
                        "caBundle": b64encode(self.pki.ca_cert.read_bytes()).decode(),
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "objectSelector": {"matchLabels": {HOLD_LABEL: name}},
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "timeoutSeconds": 30,
                    "failurePolicy": "Ignore",
                }
            ],
        }


def one_seat_for(user: str, name: str) -> list[dict[str, Any]]:
    """A priority level of one seat, rejecting when busy, for every request of ``user``."""
    return [
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": {"name": name},
            "spec": {
                "type": "Limited",
                "limited": {
                    "nominalConcurrencyShares": 0,
                    "lendablePercent": 0,
                    "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Reject"},
                },
            },
        },
        {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": name},
            "spec": {
                "priorityLevelConfiguration": {"name": name},
                "matchingPrecedence": 100,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [
                    {
                        "subjects": [{"kind": "User", "user": {"name": user}}],
                        "resourceRules": [
                            {
                                "verbs": ["*"],
                                "apiGroups": ["*"],
                                "resources": ["*"],
                                "namespaces": ["*"],
                                "clusterScope": True,
                            }
                        ],
                    }
                ],
            },
        },
    ]


@pytest.fixture
def throttle(
    admin_api: client.ApiClient, tmp_path: Path
) -> Iterator[Callable[[int, str], contextlib.AbstractContextManager[HoldingWebhook]]]:
    """Throttles one tenant: returns a context manager that keeps its only seat taken."""
    name = f"kuberth-test-{secrets.token_hex(4)}"
    custom = client.CustomObjectsApi(admin_api)
    admission = client.AdmissionregistrationV1Api(admin_api)

    @contextlib.contextmanager
    def hold(github_id: int, namespace: str) -> Iterator[HoldingWebhook]:
        for manifest in one_seat_for(tenant_user(github_id), name):
            plural = f"{manifest['kind'].lower()}s"
            custom.create_cluster_custom_object(
                "flowcontrol.apiserver.k8s.io", "v1", plural, manifest
            )
        with HoldingWebhook(tmp_path / "webhook") as webhook:
            admission.create_validating_webhook_configuration(webhook.configuration(name))
            # The flow schema and the webhook take effect asynchronously: take the seat until a
            # probe as the tenant is refused with 429.
            deadline = time.monotonic() + 30
            while True:
                assert time.monotonic() < deadline, "the tenant could not be throttled"
                webhook.released.clear()
                webhook.holding.clear()
                seat_taker = threading.Thread(
                    target=_create_held_config_map,
                    args=(admin_api, namespace, tenant_user(github_id), name),
                    daemon=True,
                )
                seat_taker.start()
                if webhook.holding.wait(timeout=2) and _probe(admin_api, github_id, namespace):
                    break
                webhook.released.set()
                seat_taker.join(timeout=30)
            yield webhook
            webhook.released.set()
            seat_taker.join(timeout=30)

    yield hold
    with contextlib.suppress(client.ApiException):
        admission.delete_validating_webhook_configuration(name)
    for plural in ("flowschemas", "prioritylevelconfigurations"):
        with contextlib.suppress(client.ApiException):
            custom.delete_cluster_custom_object("flowcontrol.apiserver.k8s.io", "v1", plural, name)


def _probe(api: client.ApiClient, github_id: int, namespace: str) -> bool:
    """Whether a request as the tenant is throttled right now."""
    try:
        client.CoreV1Api(api).read_namespace(
            namespace, _headers={"Impersonate-User": tenant_user(github_id)}
        )
    except client.ApiException as error:
        if error.status == 429:
            return True
        raise
    return False


def _create_held_config_map(api: client.ApiClient, namespace: str, user: str, name: str) -> None:
    """Creates a ConfigMap as the tenant; the webhook holds it, taking the tenant's one seat."""
    body = {
        "metadata": {"generateName": "held-", "labels": {HOLD_LABEL: name}},
        "data": {"why": "holds the tenant's only API Priority and Fairness seat"},
    }
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(api).create_namespaced_config_map(
            namespace, body, _headers={"Impersonate-User": user}, _request_timeout=60
        )


def _signed_in(http: TestClient, github: StandInServer, github_id: int) -> str:
    login = f"t{secrets.token_hex(4)}"
    assert sign_in(http, github, login=login, user_id=github_id).status_code == 302
    return login


def test_a_short_throttle_is_waited_out(
    kuberth: KuberthFactory,
    github: StandInServer,
    throttle: Callable[[int, str], contextlib.AbstractContextManager[HoldingWebhook]],
    new_id: Callable[[], int],
) -> None:
    """Throttled for about a second: the tenant's request waits and succeeds, sent few times."""
    github_id = new_id()
    with kuberth(kubernetes_throttle_budget=5) as http:
        namespace = _signed_in(http, github, github_id)
        api = http.app.state.services.kubernetes  # type: ignore[attr-defined]
        with throttle(github_id, namespace) as webhook:
            threading.Timer(1.0, webhook.released.set).start()
            sent, throttled = api.requests_sent, api.throttled_retries
            started = time.monotonic()
            response = http.get(f"/api/v1/namespaces/{namespace}/deployments")
            took = time.monotonic() - started
        assert response.status_code == 200, response.text
        retries = api.throttled_retries - throttled
        assert 1 <= retries <= 3, retries  # waited as told, did not hammer
        assert api.requests_sent - sent == retries + 1
        assert took >= 1.0  # the API server's Retry-After (1 s) was honoured


def test_a_long_throttle_is_503_with_the_api_servers_retry_after(
    kuberth: KuberthFactory,
    github: StandInServer,
    throttle: Callable[[int, str], contextlib.AbstractContextManager[HoldingWebhook]],
    new_id: Callable[[], int],
) -> None:
    """Throttled past the budget: a 503 with Retry-After, nothing created, then it works."""
    github_id = new_id()
    with kuberth(kubernetes_throttle_budget=2, kubernetes_retry_after=9) as http:
        namespace = _signed_in(http, github, github_id)
        api = http.app.state.services.kubernetes  # type: ignore[attr-defined]
        body = {"name": "web", "image": "nginx:1.27"}
        with throttle(github_id, namespace):
            throttled = api.throttled_retries
            refused = http.post(f"/api/v1/namespaces/{namespace}/apps", json=body)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "kubernetes_unavailable"
            # The API server's own Retry-After, not Kuberth's default for an unreachable cluster.
            assert refused.headers["Retry-After"] != "9"
            assert int(refused.headers["Retry-After"]) >= 1
            assert api.throttled_retries - throttled >= 1
        # Nothing was left half-made: the same app can now be created from scratch (a leftover
        # Deployment or Service would make this a 409).
        created = http.post(f"/api/v1/namespaces/{namespace}/apps", json=body)
        assert created.status_code == 201, created.text
