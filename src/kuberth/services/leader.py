"""Leader election with a Kubernetes Lease: of several replicas, one runs the background work.

Replicas share a database and a cluster but nothing else, so they agree through the API server:
whoever holds the Lease leads. A free Lease (no holder, or one not renewed for its duration) is
taken with a conditional write (the ``resourceVersion`` just read); when two replicas try at once
the API server accepts one write and answers the other with 409, so there is never more than one
holder. The leader renews every ``renew_interval`` and steps down when it has not managed to for
``lease_duration - renew_interval`` (before anyone else may take over); a graceful shutdown hands
the Lease back, so another replica takes over at its next attempt instead of waiting for expiry.

Expiry is judged by the Lease's ``renewTime`` against this replica's clock, so the replicas'
clocks must agree to well within the lease duration (NTP does that).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import Gauge

from kuberth.exceptions import KuberthError
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.errors import (
    KubernetesAlreadyExistsError,
    KubernetesConflictError,
    KubernetesNotFoundError,
)
from kuberth.storage.kubernetes.leases import LeaseStorage, micro_time, parse_micro_time
from kuberth.storage.kubernetes.namespaces import NamespaceStorage

log = logging.getLogger(__name__)

#: The Lease the reconciler's leader holds, in Kuberth's own namespace.
RECONCILER_LEASE = "kuberth-reconciler"

LEADER = Gauge(
    "kuberth_leader", "1 while this replica holds the Lease (and runs its work), else 0", ["lease"]
)


_OWN_NAMESPACE: JSON = {"apiVersion": "v1", "kind": "Namespace"}


def holder_identity() -> str:
    """Unique per process, and says which one: host (the pod's name in a cluster), pid, random."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(4)}"


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeaderElector:
    """Campaigns for one Lease as Kuberth itself (never an impersonated tenant)."""

    def __init__(
        self,
        *,
        leases: LeaseStorage,
        namespaces: NamespaceStorage,
        namespace: str,
        name: str = RECONCILER_LEASE,
        identity: str,
        lease_duration: int,
        renew_interval: float,
        clock: Callable[[], datetime.datetime] = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if renew_interval >= lease_duration:
            raise ValueError("the renew interval must be shorter than the lease duration")
        self._leases = leases
        self._namespaces = namespaces
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._duration = lease_duration
        self._renew_interval = renew_interval
        self._clock = clock
        self._monotonic = monotonic
        #: When the last successful acquire or renewal was sent (monotonic); None: not leading.
        self._renewed_at: float | None = None
        self._gauge = LEADER.labels(lease=name)

    @property
    def leading(self) -> bool:
        """Whether this replica holds the Lease and may act on it.

        True only until the renew deadline (the lease duration less one renew interval) after the
        last successful renewal: by then this replica has stopped, before another may start.
        """
        if self._renewed_at is None:
            return False
        return self._monotonic() - self._renewed_at < self._duration - self._renew_interval

    def try_acquire_or_renew(self) -> bool:
        """One attempt: take the Lease if it is free, renew it if it is ours. Returns ``leading``.

        Raises:
            KuberthError: the API server could not be asked or refused (e.g. no RBAC for Leases);
                a leader stays one until its renew deadline.
        """
        sent = self._monotonic()
        now = self._clock()
        lease = self._leases.read(self.name, namespace=self.namespace)
        if lease is None:
            return self._won(sent) if self._create(now) else self._lost()
        claim = self._claim(lease, now)
        if claim is None:
            return self._lost()
        try:
            # Conditional on the resourceVersion read above: a 409 means another replica wrote
            # the Lease since, and it is theirs.
            self._leases.replace(claim)
        except KubernetesConflictError:
            return self._lost()
        return self._taken(lease, sent)

    async def atry_acquire_or_renew(self) -> bool:
        """:meth:`try_acquire_or_renew` on the event loop.

        Raises:
            The same errors as :meth:`try_acquire_or_renew`.
        """
        sent = self._monotonic()
        now = self._clock()
        lease = await self._leases.aread(self.name, namespace=self.namespace)
        if lease is None:
            return self._won(sent) if await self._acreate(now) else self._lost()
        claim = self._claim(lease, now)
        if claim is None:
            return self._lost()
        try:
            await self._leases.areplace(claim)  # conditional, as in try_acquire_or_renew
        except KubernetesConflictError:
            return self._lost()
        return self._taken(lease, sent)

    def _claim(self, lease: JSON, now: datetime.datetime) -> JSON | None:
        """The Lease renewed, or taken over if it is free; None while another replica holds it."""
        spec: dict[str, Any] = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec, now):
            return None
        renewed = {
            **spec,
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration,
            "renewTime": micro_time(now),
        }
        if holder != self.identity:
            renewed["acquireTime"] = micro_time(now)
            renewed["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        return {**lease, "spec": renewed}

    def _taken(self, lease: JSON, sent: float) -> bool:
        """The claim was written: leading (and said so, when the Lease was not ours before)."""
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        if holder != self.identity:
            log.info(
                "took the lease %s/%s (it was %s)",
                self.namespace,
                self.name,
                f"held by {holder}, expired" if holder else "free",
            )
        return self._won(sent)

    def release(self) -> None:
        """Hand the Lease back (graceful shutdown) so another replica need not wait for expiry."""
        if not self._step_down():
            return
        try:
            lease = self._leases.read(self.name, namespace=self.namespace)
            released = self._released(lease)
            if released is not None:
                self._leases.replace(released)
                log.info("released the lease %s/%s", self.namespace, self.name)
        except KubernetesConflictError:
            pass  # written by someone else since: no longer ours to release
        except KuberthError as error:
            log.warning("could not release the lease %s/%s: %s", self.namespace, self.name, error)

    async def arelease(self) -> None:
        """:meth:`release` on the event loop."""
        if not self._step_down():
            return
        try:
            lease = await self._leases.aread(self.name, namespace=self.namespace)
            released = self._released(lease)
            if released is not None:
                await self._leases.areplace(released)
                log.info("released the lease %s/%s", self.namespace, self.name)
        except KubernetesConflictError:
            pass  # as in release
        except KuberthError as error:
            log.warning("could not release the lease %s/%s: %s", self.namespace, self.name, error)

    def _step_down(self) -> bool:
        """No longer leading, at once; returns whether this replica was."""
        was_leading = self._renewed_at is not None
        self._renewed_at = None
        self._gauge.set(0)
        return was_leading

    def _released(self, lease: JSON | None) -> JSON | None:
        """The Lease handed back (free at once for the next attempt); None when not ours."""
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return None
        now = micro_time(self._clock())
        released = {
            "leaseDurationSeconds": 1,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": lease["spec"].get("leaseTransitions", 0),
        }
        return {**lease, "spec": released}

    async def campaign(
        self, *, lead: Callable[[threading.Event], Coroutine[Any, Any, None]]
    ) -> None:
        """Campaign until cancelled (the app's shutdown), then hand the Lease back and let the
        work end; a task of the app's event loop, so no thread waits on the API server for it.

        While this replica leads, ``lead(lost)`` runs as a task of its own; leadership ending
        (renewal failed, or shutdown) sets ``lost`` and cancels it. Work that failed is logged and
        started again at the next renewal while this replica still leads.
        """
        lost: threading.Event | None = None
        work: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    await self.atry_acquire_or_renew()
                except KuberthError as error:
                    log.warning(
                        "could not acquire or renew the lease %s/%s: %s",
                        self.namespace,
                        self.name,
                        error.message,
                    )
                except Exception:  # a bug must not end the campaign: tried again at the next turn
                    log.exception("the lease %s/%s could not be renewed", self.namespace, self.name)
                if self.leading and (work is None or work.done()):
                    if work is not None:
                        _report_failure(work, what=f"the work of the lease {self.name}")
                    else:
                        log.info("leading as %s", self.identity)
                    lost = threading.Event()
                    work = asyncio.create_task(lead(lost), name=f"{self.name}-leader")
                elif not self.leading and work is not None:
                    assert lost is not None
                    log.warning("lost the lease %s/%s; stopping", self.namespace, self.name)
                    self._step_down()
                    await _wind_down(work, lost, within=self._duration)
                    lost = work = None
                await asyncio.sleep(self._renew_interval)
        finally:
            # Cancelled: handed back before the work has wound down, so the next leader starts at
            # once: a reconcile pass stops at its next namespace, and the two may overlap by that
            # much (each step of a pass is idempotent).
            if lost is not None:
                lost.set()
            await self.arelease()
            if work is not None:
                assert lost is not None
                await _wind_down(work, lost, within=self._duration)

    def _create(self, now: datetime.datetime) -> bool:
        """Create the Lease held by us; False when another replica created it first."""
        lease = self._new_lease(now)
        try:
            try:
                self._leases.create(lease, namespace=self.namespace)
            except KubernetesNotFoundError:
                self._ensure_namespace()
                self._leases.create(lease, namespace=self.namespace)
        except KubernetesAlreadyExistsError:
            return False
        log.info("created the lease %s/%s", self.namespace, self.name)
        return True

    async def _acreate(self, now: datetime.datetime) -> bool:
        """:meth:`_create` on the event loop."""
        lease = self._new_lease(now)
        try:
            try:
                await self._leases.acreate(lease, namespace=self.namespace)
            except KubernetesNotFoundError:
                await self._aensure_namespace()
                await self._leases.acreate(lease, namespace=self.namespace)
        except KubernetesAlreadyExistsError:
            return False
        log.info("created the lease %s/%s", self.namespace, self.name)
        return True

    def _new_lease(self, now: datetime.datetime) -> JSON:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self._duration,
                "acquireTime": micro_time(now),
                "renewTime": micro_time(now),
                "leaseTransitions": 0,
            },
        }

    def _ensure_namespace(self) -> None:
        """Kuberth's own namespace, made on first use so a fresh cluster just works."""
        try:
            self._namespaces.create(_OWN_NAMESPACE | {"metadata": {"name": self.namespace}})
            log.info("created Kuberth's namespace %s for its Lease", self.namespace)
        except KubernetesAlreadyExistsError:
            pass  # another replica made it meanwhile

    async def _aensure_namespace(self) -> None:
        """:meth:`_ensure_namespace` on the event loop."""
        try:
            await self._namespaces.acreate(_OWN_NAMESPACE | {"metadata": {"name": self.namespace}})
            log.info("created Kuberth's namespace %s for its Lease", self.namespace)
        except KubernetesAlreadyExistsError:
            pass  # as in _ensure_namespace

    def _expired(self, spec: dict[str, Any], now: datetime.datetime) -> bool:
        renewed = parse_micro_time(spec.get("renewTime")) or parse_micro_time(
            spec.get("acquireTime")
        )
        duration = spec.get("leaseDurationSeconds")
        if renewed is None or not isinstance(duration, int):
            return True  # a Lease nobody can be holding in any meaningful way
        return renewed + datetime.timedelta(seconds=duration) < now

    def _won(self, sent: float) -> bool:
        self._renewed_at = sent
        self._gauge.set(1)
        return True

    def _lost(self) -> bool:
        if self._renewed_at is not None:
            log.warning("the lease %s/%s is held by another replica", self.namespace, self.name)
        self._renewed_at = None
        self._gauge.set(0)
        return False


async def _wind_down(work: asyncio.Task[None], lost: threading.Event, *, within: float) -> None:
    """Ask the work to end (``lost``, which a reconcile pass checks between namespaces; a cancel
    for the task) and wait up to ``within`` seconds for it."""
    lost.set()
    work.cancel()
    await asyncio.wait({work}, timeout=within)
    if not work.done():
        log.warning("the leader's work did not end within %.0f s", within)


def _report_failure(work: asyncio.Task[None], *, what: str) -> None:
    """Log how ended work ended, if it failed (its error would otherwise go unseen)."""
    error = None if work.cancelled() else work.exception()
    if error is not None:
        log.error("%s failed; starting it again", what, exc_info=error)
