"""KUBERTH_RECONCILE_INTERVAL: a running Kuberth repairs tenant namespaces again and again, not only
at start-up."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from kuberth.devtools.github import StandInServer
from kuberth.services.builders.tenant import BASELINE_NAME
from tests.integration.conftest import KuberthFactory
from tests.integration.signin import sign_in
from tests.integration.watching import wait_until
from tests.timing import scaled

#: Seconds between passes: short enough to wait for a few of them.
INTERVAL = 1.0


@pytest.fixture
def own_kuberth_namespace(admin_api: client.ApiClient) -> Iterator[str]:
    """A Kuberth namespace (and so a reconciler Lease) of this test's own: no other Kuberth on
    the plane, live or killed, holds the Lease this one must take before it reconciles."""
    name = f"kuberth-{secrets.token_hex(4)}"
    yield name
    try:
        client.CoreV1Api(admin_api).delete_namespace(name)
    except client.ApiException as error:
        if error.status != 404:
            raise


def test_a_removed_baseline_piece_is_restored_by_a_later_pass_without_a_restart(
    kuberth: KuberthFactory,
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
    own_kuberth_namespace: str,
) -> None:
    networking = client.NetworkingV1Api(admin_api)
    core = client.CoreV1Api(admin_api)
    login = f"r{secrets.token_hex(4)}"
    with kuberth(reconcile_interval=INTERVAL, kuberth_namespace=own_kuberth_namespace) as http:
        # Signed up after the start-up pass began: whatever is restored below, a pass running while
        # Kuberth serves did it.
        assert sign_in(http, github, login=login, user_id=new_id()).status_code == 302
        policy = networking.read_namespaced_network_policy(BASELINE_NAME, login)
        limits = core.read_namespaced_limit_range(BASELINE_NAME, login)

        # Each piece is removed only after the previous one is back, so the second repair is the
        # work of a pass that started after the first repair: passes keep coming.
        for read, delete, list_fn, before in (
            (
                networking.read_namespaced_network_policy,
                networking.delete_namespaced_network_policy,
                networking.list_namespaced_network_policy,
                policy,
            ),
            (
                core.read_namespaced_limit_range,
                core.delete_namespaced_limit_range,
                core.list_namespaced_limit_range,
                limits,
            ),
        ):
            delete(BASELINE_NAME, login)
            restored: Any = wait_until(
                list_fn,
                BASELINE_NAME,
                lambda obj, old=before: obj.metadata.uid != old.metadata.uid,
                namespace=login,
                timeout=round(scaled(30)),
            )
            assert restored.spec == before.spec
            assert read(BASELINE_NAME, login).metadata.uid == restored.metadata.uid
        assert http.get("/readyz").status_code == 200
