"""The app's background work as tasks of its lifespan: the watch-fed copies and the leader's
campaign run on the app's event loop, and a shutdown cancels them cleanly, handing the Lease over
and closing every watch without a word of warning."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from kubernetes import client

from kuberth.services.leader import RECONCILER_LEASE, LeaderElector
from kuberth.storage.kubernetes.api import KubernetesApi
from kuberth.storage.kubernetes.leases import LeaseStorage
from kuberth.storage.kubernetes.namespaces import NamespaceStorage
from tests.integration.conftest import KuberthFactory
from tests.timing import eventually, scaled


def test_the_copies_run_on_the_apps_loop_and_end_with_it_without_a_warning(
    kuberth: KuberthFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kuberth")
    with kuberth() as http:
        informers = http.app.state.services.informers  # type: ignore[attr-defined]
        for informer in informers:
            informer.require_synced(scaled(20))  # started by the first use, as a task
        tasks = [informer._task for informer in informers]
        assert all(task is not None and not task.done() for task in tasks)
        assert not [t.name for t in threading.enumerate() if "informer" in t.name]
    assert all(task is not None and task.cancelled() for task in tasks)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("kuberth")] == []


def test_a_shutdown_hands_the_lease_over_at_once(
    kuberth: KuberthFactory, api: KubernetesApi, admin_api: client.ApiClient, namespace: str
) -> None:
    """The Lease would last ten minutes: another candidate takes it at its first attempt."""
    with kuberth(
        reconcile_interval=3600,
        kuberth_namespace=namespace,
        lease_duration=600,
        lease_renew_interval=1,
    ) as http:
        leader: LeaderElector = http.app.state.services.leader  # type: ignore[attr-defined]
        eventually(lambda: leader.leading, within=20, what="the replica leads")
        stopping = time.monotonic()
    print(f"shutdown while leading: {time.monotonic() - stopping:.2f}s")
    assert not leader.leading
    other = LeaderElector(
        leases=LeaseStorage(api),
        namespaces=NamespaceStorage(api),
        namespace=namespace,
        identity="the-other-replica",
        lease_duration=600,
        renew_interval=1,
    )
    assert other.try_acquire_or_renew()
    lease = client.CoordinationV1Api(admin_api).read_namespaced_lease(RECONCILER_LEASE, namespace)
    assert lease.spec.holder_identity == "the-other-replica"
