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
from typing import Any, Self

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from kubernetes import client
from prometheus_client import REGISTRY

from kuberth.cluster.pki import create_pki
from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer
from kuberth.services.builders.tenant import tenant_user
from tests.integration.conftest import KuberthFactory
from tests.integration.signin import sign_in
from tests.timing import eventually, scaled

HOLD_LABEL = "kuberth.dev/hold"


class AdmissionWebhook:
    """A validating admission webhook served by the test; ``decide`` answers each review."""

    def __init__(self, directory: Path, decide: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.pki = create_pki(directory)  # its serving certificate is valid for 127.0.0.1
        self.port = free_port()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = {"uid": review["request"]["uid"], **decide(review["request"])}
                body = json.dumps(
                    {
                        "apiVersion": "admission.k8s.io/v1",
                        "kind": "AdmissionReview",
                        "response": answer,
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

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def webhook(self, name: str, **selection: Any) -> dict[str, Any]:
        """One entry of a ValidatingWebhookConfiguration calling this server."""
        return {
            "name": f"{name}.test.kuberth.dev",
            "clientConfig": {
                "url": f"https://127.0.0.1:{self.port}/",
                "caBundle": b64encode(self.pki.ca_cert.read_bytes()).decode(),
            },
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "timeoutSeconds": 30,
            "failurePolicy": "Ignore",
            **selection,
        }


class HoldingWebhook(AdmissionWebhook):
    """Allows everything, after holding each request until released."""

    def __init__(self, directory: Path) -> None:
        self.released = threading.Event()
        self.holding = threading.Event()
        super().__init__(directory, self._hold)

    def _hold(self, _request: dict[str, Any]) -> dict[str, Any]:
        self.holding.set()
        self.released.wait(timeout=60)
        return {"allowed": True}

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        super().__exit__(*exc)

    def configuration(self, name: str) -> dict[str, Any]:
        """Holds creations of ConfigMaps labelled with :data:`HOLD_LABEL` (only the test's)."""
        return {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                self.webhook(
                    name,
                    rules=[
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    objectSelector={"matchLabels": {HOLD_LABEL: name}},
                )
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
            deadline = time.monotonic() + scaled(30)
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
                if webhook.holding.wait(timeout=scaled(2)) and _probe(
                    admin_api, github_id, namespace
                ):
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
            sent, throttled = api.requests_sent, api.throttled_retries

            def release_after_the_first_retry() -> None:
                # Whatever the machine's speed: the seat is freed once Kuberth has been refused
                # and is waiting to send again, so the request succeeds on a retry.
                eventually(
                    lambda: api.throttled_retries > throttled, within=30, what="a throttled retry"
                )
                webhook.released.set()

            releaser = threading.Thread(target=release_after_the_first_retry, daemon=True)
            releaser.start()
            started = time.monotonic()
            response = http.get(f"/api/v1/namespaces/{namespace}/deployments")
            took = time.monotonic() - started
            releaser.join()
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


# -- quota admission's own conflict ------------------------------------------------------------

QUOTA_CONFLICT_MESSAGE = (
    'Operation cannot be fulfilled on resourcequotas "quota": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


def conflict_on(kind: str) -> dict[str, Any]:
    """A 409 Status as the API server words a conflict on an object of ``kind`` (a plural)."""
    return {
        "allowed": False,
        "status": {
            "status": "Failure",
            "code": 409,
            "reason": "Conflict",
            "message": QUOTA_CONFLICT_MESSAGE.replace("resourcequotas", kind),
            "details": {"name": "quota", "kind": kind},
        },
    }


@pytest.fixture
def refuse_deployments(
    admin_api: client.ApiClient, tmp_path: Path
) -> Iterator[Callable[..., contextlib.AbstractContextManager[list[str]]]]:
    """Refuses the next Deployment creations in a namespace with a 409 on a ``kind``.

    Quota admission answers such a 409 when its update of the ResourceQuota's usage loses a race
    with concurrent writes, more often on a busy machine; no test can make that race happen on
    cue, so a webhook answers the same Status. The context yields the names it refused.
    """
    admission = client.AdmissionregistrationV1Api(admin_api)

    @contextlib.contextmanager
    def refusing(namespace: str, *, times: int, kind: str) -> Iterator[list[str]]:
        refused: list[str] = []

        def decide(request: dict[str, Any]) -> dict[str, Any]:
            if request.get("dryRun"):  # the probe below: refused, not counted
                return conflict_on(kind)
            if len(refused) < times:
                refused.append(request["object"]["metadata"]["name"])
                return conflict_on(kind)
            return {"allowed": True}

        name = f"kuberth-test-{secrets.token_hex(4)}"
        selection = {
            "rules": [
                {
                    "apiGroups": ["apps"],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["deployments"],
                }
            ],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        }
        with AdmissionWebhook(tmp_path / name, decide) as webhook:
            admission.create_validating_webhook_configuration(
                {"metadata": {"name": name}, "webhooks": [webhook.webhook(name, **selection)]}
            )
            try:
                # The configuration takes effect asynchronously: until a dry run is refused.
                eventually(
                    lambda: _dry_run_refused(admin_api, namespace),
                    within=30,
                    what="the webhook in effect",
                )
                yield refused
            finally:
                admission.delete_validating_webhook_configuration(name)

    return refusing


def _dry_run_refused(api: client.ApiClient, namespace: str) -> bool:
    body = {
        "metadata": {"name": "probe"},
        "spec": {
            "selector": {"matchLabels": {"app": "probe"}},
            "template": {
                "metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "a", "image": "probe"}]},
            },
        },
    }
    try:
        client.AppsV1Api(api).create_namespaced_deployment(namespace, body, dry_run="All")
    except client.ApiException as error:
        if error.status == 409:
            return True
        raise
    return False


def _quota_conflict_retries() -> float:
    return REGISTRY.get_sample_value("kuberth_kubernetes_quota_conflict_retries_total") or 0.0


def _create_while_refused(
    http: TestClient,
    namespace: str,
    refuse_deployments: Callable[..., contextlib.AbstractContextManager[list[str]]],
    **refusal: Any,
) -> tuple[Response, list[str], float]:
    """A tenant's Deployment create while the webhook refuses; (answer, refused names, retries)."""
    with refuse_deployments(namespace, **refusal) as refused:
        retried = _quota_conflict_retries()
        response = http.post(
            f"/api/v1/namespaces/{namespace}/deployments", json={"name": "w", "image": "x"}
        )
    return response, refused, _quota_conflict_retries() - retried


def test_quota_admissions_own_conflict_is_retried_inside_kuberth(
    kuberth: KuberthFactory,
    github: StandInServer,
    refuse_deployments: Callable[..., contextlib.AbstractContextManager[list[str]]],
    new_id: Callable[[], int],
) -> None:
    """Nothing was created, and the tenant did not cause it: the tenant sees a 201."""
    with kuberth() as http:
        namespace = _signed_in(http, github, new_id())
        response, refused, retries = _create_while_refused(
            http, namespace, refuse_deployments, times=2, kind="resourcequotas"
        )
    assert response.status_code == 201, response.text
    assert refused == ["w", "w"]
    assert retries == 2


def test_a_conflict_on_the_object_itself_is_not_retried(
    kuberth: KuberthFactory,
    github: StandInServer,
    refuse_deployments: Callable[..., contextlib.AbstractContextManager[list[str]]],
    new_id: Callable[[], int],
) -> None:
    """Only quota admission's conflict is retried; any other is the tenant's to see."""
    with kuberth() as http:
        namespace = _signed_in(http, github, new_id())
        response, refused, retries = _create_while_refused(
            http, namespace, refuse_deployments, times=1, kind="deployments"
        )
    assert response.status_code == 409, response.text
    assert refused == ["w"]  # sent once
    assert retries == 0


def test_a_quota_conflict_that_lasts_past_the_budget_is_the_honest_409(
    kuberth: KuberthFactory,
    github: StandInServer,
    refuse_deployments: Callable[..., contextlib.AbstractContextManager[list[str]]],
    new_id: Callable[[], int],
) -> None:
    """Retried with growing waits within the budget, then passed on: never a loop."""
    with kuberth(kubernetes_throttle_budget=1) as http:
        namespace = _signed_in(http, github, new_id())
        response, refused, _ = _create_while_refused(
            http, namespace, refuse_deployments, times=1000, kind="resourcequotas"
        )
    assert response.status_code == 409, response.text
    assert "resourcequotas" in response.json()["message"]
    # Waits of 0.05, 0.1, 0.2, 0.4 s fit a 1 s budget: at most five attempts.
    assert 2 <= len(refused) <= 5, refused
