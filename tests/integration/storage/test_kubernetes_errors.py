"""The real API server's refusals, each read into the Kubernetes error its Status's reason names
(and the domain error that means to a client)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from kuberth.exceptions import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UpstreamError,
)
from kuberth.storage.kubernetes import errors
from kuberth.storage.kubernetes.api import Identity
from kuberth.storage.kubernetes.resources import ServiceStorage
from tests.integration.conftest import TEST_LABEL
from tests.integration.kubernetes import api_of
from tests.integration.storage.test_kubernetes_async import run, service


@pytest.fixture
def services(kubeconfig: Path) -> Iterator[ServiceStorage]:
    api = api_of(kubeconfig)
    yield ServiceStorage(api)
    api.close()


def test_a_missing_object_is_not_found(services: ServiceStorage, namespace: str) -> None:
    with pytest.raises(errors.KubernetesNotFoundError) as raised:
        services.patch("gone", {}, namespace=namespace)
    assert isinstance(raised.value, NotFoundError)
    assert raised.value.status.reason == "NotFound"
    assert (raised.value.status.kind, raised.value.status.name) == ("services", "gone")
    assert raised.value.message == f"service gone in {namespace} not found"


def test_a_taken_name_is_already_exists_and_a_stale_version_is_conflict(
    services: ServiceStorage, namespace: str
) -> None:
    """Both are 409s; only the reason tells them apart."""
    services.create(service("web"), namespace=namespace)
    with pytest.raises(errors.KubernetesAlreadyExistsError) as taken:
        services.create(service("web"), namespace=namespace)
    assert isinstance(taken.value, ConflictError)
    assert not isinstance(taken.value, errors.KubernetesConflictError)
    assert "already exists" in taken.value.message

    stale = services.read("web", namespace=namespace)
    assert stale is not None
    services.patch("web", {"metadata": {"labels": {"v": "2"}}}, namespace=namespace)
    with pytest.raises(errors.KubernetesConflictError) as conflict:
        services.replace(stale)
    assert not isinstance(conflict.value, errors.KubernetesAlreadyExistsError)
    assert "has been modified" in conflict.value.message


def test_an_invalid_object_names_every_field_at_fault(
    services: ServiceStorage, namespace: str
) -> None:
    bad = service("bad", ports=[{"port": 70000}, {"port": 0, "name": "b"}])
    with pytest.raises(errors.KubernetesInvalidError) as raised:
        services.create(bad, namespace=namespace)
    assert isinstance(raised.value, InvalidInputError)
    fields = {cause.field for cause in raised.value.status.causes}
    assert {"spec.ports[0].port", "spec.ports[1].port"} <= fields
    assert raised.value.field == raised.value.status.causes[0].field
    assert all(cause.type for cause in raised.value.status.causes)


def test_a_user_without_rights_is_forbidden(services: ServiceStorage, namespace: str) -> None:
    nobody = Identity(user=f"kt-nobody-{secrets.token_hex(3)}")
    with pytest.raises(errors.KubernetesForbiddenError) as raised:
        services.list(namespace=namespace, identity=nobody)
    assert isinstance(raised.value, ForbiddenError)
    assert nobody.user in raised.value.message


def test_a_write_into_a_terminating_namespace_is_told_from_a_refusal(
    kubeconfig: Path, admin_api: client.ApiClient
) -> None:
    """NamespaceLifecycle's 403, by the cause it gives: a conflict with the namespace's state."""
    core = client.CoreV1Api(admin_api)
    name = f"kt-terminating-{secrets.token_hex(3)}"
    held = {"name": name, "labels": {TEST_LABEL: "true"}, "finalizers": ["kuberth.dev/test-hold"]}
    core.create_namespace({"metadata": held})
    core.delete_namespace(name)  # held by its finalizer: terminating until the test releases it
    api = api_of(kubeconfig)
    try:
        with pytest.raises(errors.KubernetesNamespaceTerminatingError) as raised:
            ServiceStorage(api).create(service("web"), namespace=name)
        assert isinstance(raised.value, ConflictError)
        assert not isinstance(raised.value, ForbiddenError)
        assert raised.value.status.reason == "Forbidden"
        assert errors.NAMESPACE_TERMINATING in {c.type for c in raised.value.status.causes}
    finally:
        api.close()
        core.patch_namespace(name, {"metadata": {"finalizers": None}})


def test_a_404_without_a_status_is_only_the_domains_not_found(kubeconfig: Path) -> None:
    """A path the API server does not serve (no such API group) answers a plain-text 404: no
    Status, so no reason of Kubernetes' to classify, only the code's meaning."""
    api = api_of(kubeconfig)
    try:
        with pytest.raises(NotFoundError) as raised:
            api.request("GET", "/apis/kuberth.dev/v1/nothings", what="nothings")
        assert not isinstance(raised.value, errors.KubernetesError)
        assert raised.value.message == "nothings not found"
    finally:
        api.close()


def test_credentials_the_api_server_refuses_are_kuberths_fault(
    kubeconfig: Path, tmp_path: Path
) -> None:
    """The same cluster, with a token the API server does not know: its 401 is read as Kuberth's
    own credentials refused (a 502 to the client), on both the synchronous and the event loop's
    path."""
    refused = yaml.safe_load(kubeconfig.read_text())
    for entry in refused["users"]:
        entry["user"] = {"token": "not-a-token-" + secrets.token_hex(8)}
    path = tmp_path / "refused.kubeconfig"
    path.write_text(yaml.safe_dump(refused))
    api = api_of(path)
    try:
        with pytest.raises(errors.KubernetesUnauthorizedError) as raised:
            api.request("GET", "/api/v1/namespaces", what="namespaces")
        with pytest.raises(errors.KubernetesUnauthorizedError) as araised:
            run(api, api.arequest("GET", "/api/v1/namespaces", what="namespaces"))
    finally:
        api.close()
    for error in (raised.value, araised.value):
        assert isinstance(error, UpstreamError)
        assert error.status_code == 502
        assert error.status.reason == "Unauthorized"
        assert "did not accept Kuberth's own credentials (401)" in error.message
