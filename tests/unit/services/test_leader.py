"""Leader election's rules, against an in-memory Lease that checks resourceVersions as the API
server does, and clocks the test moves by hand."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from kuberth.exceptions import KubernetesUnavailableError
from kuberth.services.leader import LeaderElector
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.errors import (
    KubernetesAlreadyExistsError,
    KubernetesConflictError,
    KubernetesNotFoundError,
    Status,
)
from kuberth.storage.kubernetes.leases import parse_micro_time

START = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


class FakeApiServer:
    """One Lease and the namespaces, with optimistic concurrency on the Lease."""

    def __init__(self, *, namespace_exists: bool = True) -> None:
        self.lease: JSON | None = None
        self.version = 0
        self.namespaces: set[str] = {"kuberth"} if namespace_exists else set()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise KubernetesUnavailableError("down", retry_after=1)


class FakeLeases:
    def __init__(self, server: FakeApiServer) -> None:
        self.server = server

    def read(self, name: str, *, namespace: str | None = None) -> JSON | None:
        self.server._check()
        return copy.deepcopy(self.server.lease)

    def create(self, body: JSON, *, namespace: str | None = None) -> JSON:
        self.server._check()
        if namespace not in self.server.namespaces:
            missing = Status(404, "NotFound", f'namespaces "{namespace}" not found')
            raise KubernetesNotFoundError(missing, what=f"namespace {namespace}")
        if self.server.lease is not None:
            raise KubernetesAlreadyExistsError(Status(409, "AlreadyExists", "already exists"))
        return self._store(body)

    def replace(self, body: JSON) -> JSON:
        self.server._check()
        assert self.server.lease is not None
        if body["metadata"]["resourceVersion"] != self.server.lease["metadata"]["resourceVersion"]:
            raise KubernetesConflictError(Status(409, "Conflict", "the object has been modified"))
        return self._store(body)

    def _store(self, body: JSON) -> JSON:
        self.server.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.server.version)
        self.server.lease = stored
        return copy.deepcopy(stored)


class FakeNamespaces:
    def __init__(self, server: FakeApiServer) -> None:
        self.server = server

    def create(self, body: JSON) -> JSON:
        self.server.namespaces.add(body["metadata"]["name"])
        return body


class Clocks:
    def __init__(self) -> None:
        self.seconds = 0.0

    def wall(self) -> datetime.datetime:
        return START + datetime.timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds


def elector(server: FakeApiServer, clocks: Clocks, identity: str) -> LeaderElector:
    fakes: Any = (FakeLeases(server), FakeNamespaces(server))
    return LeaderElector(
        leases=fakes[0],
        namespaces=fakes[1],
        namespace="kuberth",
        identity=identity,
        lease_duration=15,
        renew_interval=5,
        clock=clocks.wall,
        monotonic=clocks.monotonic,
    )


def holder(server: FakeApiServer) -> str | None:
    assert server.lease is not None
    held: str | None = server.lease["spec"].get("holderIdentity")
    return held


def test_the_first_replica_creates_the_lease_and_the_second_stands_by() -> None:
    server, clocks = FakeApiServer(), Clocks()
    a, b = elector(server, clocks, "a"), elector(server, clocks, "b")
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert (a.leading, b.leading) == (True, False)
    assert holder(server) == "a"
    assert server.lease is not None
    assert server.lease["spec"]["leaseDurationSeconds"] == 15


def test_kuberths_namespace_is_created_when_missing() -> None:
    server, clocks = FakeApiServer(namespace_exists=False), Clocks()
    assert elector(server, clocks, "a").try_acquire_or_renew()
    assert "kuberth" in server.namespaces


def test_renewals_keep_the_lease_and_an_expired_one_is_taken_over() -> None:
    server, clocks = FakeApiServer(), Clocks()
    a, b = elector(server, clocks, "a"), elector(server, clocks, "b")
    assert a.try_acquire_or_renew()
    for _ in range(5):
        clocks.seconds += 5
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    renewed = server.lease["spec"]["renewTime"] if server.lease else None
    assert parse_micro_time(renewed) == clocks.wall()

    clocks.seconds += 15  # a is gone: not renewed for the lease duration...
    assert not b.try_acquire_or_renew()  # ...but not yet *past* it
    clocks.seconds += 0.001
    assert b.try_acquire_or_renew()
    assert holder(server) == "b"
    assert server.lease is not None
    assert server.lease["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew()  # a comes back: b's now
    assert not a.leading


def test_of_two_replicas_racing_for_a_free_lease_one_wins_by_resource_version() -> None:
    server, clocks = FakeApiServer(), Clocks()
    a, b = elector(server, clocks, "a"), elector(server, clocks, "b")
    assert a.try_acquire_or_renew()
    a.release()
    stale = copy.deepcopy(server.lease)  # both read the released Lease...
    assert stale is not None
    assert not stale["spec"].get("holderIdentity")
    assert b.try_acquire_or_renew()  # ...b writes first...
    leases: Any = a._leases
    original_read = leases.read
    leases.read = lambda *args, **kwargs: copy.deepcopy(stale)
    assert not a.try_acquire_or_renew()  # ...and a's write on the old version is a 409
    leases.read = original_read
    assert holder(server) == "b"
    assert (a.leading, b.leading) == (False, True)


def test_a_leader_that_cannot_renew_steps_down_before_others_may_take_over() -> None:
    server, clocks = FakeApiServer(), Clocks()
    a = elector(server, clocks, "a")
    assert a.try_acquire_or_renew()
    server.down = True
    clocks.seconds += 5
    with pytest.raises(KubernetesUnavailableError):
        assert a.try_acquire_or_renew()
    assert a.leading  # within the renew deadline (lease duration less one renew interval)
    clocks.seconds += 5
    assert not a.leading  # 10 s without a renewal: stepped down, 5 s before the Lease expires


def test_release_frees_the_lease_for_the_next_attempt() -> None:
    server, clocks = FakeApiServer(), Clocks()
    a, b = elector(server, clocks, "a"), elector(server, clocks, "b")
    assert a.try_acquire_or_renew()
    a.release()
    assert not a.leading
    assert not holder(server)
    assert b.try_acquire_or_renew()  # at once, no waiting for expiry
    a.release()  # not the holder: leaves b's Lease alone
    assert holder(server) == "b"
