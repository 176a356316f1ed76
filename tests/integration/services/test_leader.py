"""Leader election as a task of an event loop, against the real API server: cancelled, the task
hands the Lease back and ends its work, so another candidate takes over at its next attempt."""

from __future__ import annotations

import asyncio
import threading
import time

from kubernetes import client

from kuberth.services.leader import LeaderElector
from kuberth.storage.kubernetes.api import KubernetesApi
from kuberth.storage.kubernetes.leases import LeaseStorage
from kuberth.storage.kubernetes.namespaces import NamespaceStorage
from tests.integration.storage.test_kubernetes_async import run
from tests.timing import scaled

#: Far longer than the test: a takeover within it can only come from the Lease handed back.
LEASE_DURATION = 600


def candidate(api: KubernetesApi, namespace: str, identity: str) -> LeaderElector:
    return LeaderElector(
        leases=LeaseStorage(api),
        namespaces=NamespaceStorage(api),
        namespace=namespace,
        name="kt-leader",
        identity=identity,
        lease_duration=LEASE_DURATION,
        renew_interval=0.2,
    )


def test_a_cancelled_campaign_hands_the_lease_over_and_ends_its_work(
    api: KubernetesApi, admin_api: client.ApiClient, namespace: str
) -> None:
    a, b = candidate(api, namespace, "a"), candidate(api, namespace, "b")
    lost_seen = threading.Event()

    async def lead(lost: threading.Event) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            if lost.is_set():  # set before the work is cancelled
                lost_seen.set()

    async def scenario() -> tuple[bool, bool, float]:
        campaign = asyncio.create_task(a.campaign(lead=lead))
        while not a.leading:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a few renewals: b cannot take it while a holds it
        assert not await b.atry_acquire_or_renew()
        started = time.monotonic()
        campaign.cancel()
        await asyncio.wait({campaign}, timeout=scaled(10))
        took = time.monotonic() - started
        return campaign.cancelled(), await b.atry_acquire_or_renew(), took

    cancelled, taken_over, took = run(api, scenario())
    print(f"cancel to the Lease handed back: {took:.3f}s")
    assert cancelled
    assert lost_seen.is_set()
    assert not a.leading
    assert taken_over  # at once, not after the 600 s the Lease would last
    lease = client.CoordinationV1Api(admin_api).read_namespaced_lease("kt-leader", namespace)
    assert lease.spec.holder_identity == "b"
    assert lease.spec.lease_transitions == 1


def test_work_that_fails_is_started_again_while_leading(api: KubernetesApi, namespace: str) -> None:
    a = candidate(api, namespace, "a")
    starts = 0

    async def lead(lost: threading.Event) -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            raise RuntimeError("a bug in the work")
        await asyncio.sleep(3600)

    async def scenario() -> None:
        campaign = asyncio.create_task(a.campaign(lead=lead))
        deadline = time.monotonic() + scaled(10)
        while starts < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        campaign.cancel()
        await asyncio.wait({campaign}, timeout=scaled(10))

    run(api, scenario())
    assert starts == 2
    assert not a.leading
