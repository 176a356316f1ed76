"""Bringing every tenant namespace back to a complete baseline, after a crash or tampering.

Sign-up and namespace creation write Kubernetes first and the database second, step by step. A
Kuberth killed between two steps leaves a namespace with part of its baseline, or one the database
does not know yet. The reconciler finishes that work, rolling forward and never deleting: a
namespace unknown to the database may hold a tenant's data (a database restored from an older
backup looks exactly like that), so it is recorded for its owner rather than removed.

One pass costs five paginated list requests (namespaces and the four baseline kinds, metadata
only) however many tenants there are, plus one apply per missing piece. A last, separate step
releases the host claims of Ingresses that no longer exist, from the watch-fed index of Ingresses
(one narrowed read per claim the index does not show, to be sure).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.orm import Session

from kuberth.exceptions import KuberthError
from kuberth.services.builders.tenant import BASELINE_NAME, MANAGED_BY, OWNER_ID, PERSONAL
from kuberth.services.hosts import HostClaims
from kuberth.services.provisioning import ACCESS_KIND, Provisioner
from kuberth.storage.database.engine import AsyncSessions
from kuberth.storage.database.users import NamespaceStore, UserStore, aforget
from kuberth.storage.kubernetes.namespaces import NamespaceStorage
from kuberth.storage.kubernetes.resources import ResourceStorage

log = logging.getLogger(__name__)

#: A host claim this old whose Ingress does not exist is an orphan; a younger one may belong to a
#: write still on its way to the API server.
ORPHAN_GRACE = datetime.timedelta(minutes=10)


MANAGED = f"{MANAGED_BY}=kuberth"

PASSES = Counter(
    "kuberth_reconcile_passes_total",
    "Reconcile passes, by result: ok, error, or stopped (early, at shutdown)",
    ["result"],
)
NAMESPACES_FIXED = Counter(
    "kuberth_reconcile_namespaces_total",
    "Namespaces a reconcile pass acted on, by action: completed, recorded, forgotten, withheld "
    "(a revoked owner's access removed again), failed",
    ["action"],
)
PASS_SECONDS = Histogram(
    "kuberth_reconcile_duration_seconds",
    "How long one reconcile pass took",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
LAST_SUCCESS = Gauge(
    "kuberth_reconcile_last_success_timestamp_seconds", "When the last reconcile pass succeeded"
)
TENANT_NAMESPACES = Gauge(
    "kuberth_tenant_namespaces", "Kuberth-managed namespaces the last reconcile pass found"
)


@dataclass
class ReconcileReport:
    """What one pass found and did."""

    namespaces: int = 0
    completed: list[str] = field(default_factory=list)  # baselines that missed a piece
    recorded: list[str] = field(default_factory=list)  # namespaces the database did not know
    forgotten: list[str] = field(default_factory=list)  # records of namespaces now gone
    withheld: list[str] = field(default_factory=list)  # revoked owners' access taken away again
    failed: dict[str, str] = field(default_factory=dict)  # namespace -> why (tried next pass)
    released_hosts: int = 0  # host claims of Ingresses that no longer exist
    stopped: bool = False  # cut short (shutdown, or leadership lost); the next pass goes on


class Stop(Protocol):
    """What a pass checks between namespaces (and the sign-up sweep between users): a
    ``threading.Event`` or an ``asyncio.Event``."""

    def is_set(self) -> bool: ...


class Reconciler:
    def __init__(
        self,
        *,
        asessions: AsyncSessions,
        namespaces: NamespaceStorage,
        baseline_storage: Mapping[str, ResourceStorage],
        provisioner: Provisioner,
        hosts: HostClaims | None = None,
        orphan_grace: datetime.timedelta = ORPHAN_GRACE,
        withdraw: Callable[..., Awaitable[None]] | None = None,
        sweep: Callable[[Stop], Awaitable[object]] | None = None,
        sweep_interval: float = 300.0,
    ) -> None:
        self._asessions = asessions
        self._namespaces = namespaces
        self._baseline = baseline_storage
        self._provisioner = provisioner
        self._hosts = hosts
        self._orphan_grace = orphan_grace
        #: Takes a revoked owner's access and apps away in a namespace (AdminService.awithdraw);
        #: without it, just the access.
        self._withdraw = withdraw
        #: A separate step run by the same leader after each pass and every ``sweep_interval``
        #: seconds in between: the sign-up rules' re-check (SignupReview.run_sweep), which ends
        #: early, between users, when ``stop`` is set.
        self._sweep = sweep
        self._sweep_interval = sweep_interval

    async def areconcile(self, *, stop: Stop | None = None) -> ReconcileReport:
        """One pass over every Kuberth namespace, on the event loop; ``stop`` ends it early,
        between namespaces, so a replica shutting down hands its Lease over without finishing a
        long pass: a namespace's steps are never cut half-way by it. (:meth:`run` turns a cancel
        into ``stop``; a pass cancelled directly ends where it waits, its namespace finished by
        the next pass, every step being idempotent.)

        Raises:
            KuberthError: the cluster or the database could not be read (nothing was changed).
        """
        report = ReconcileReport()
        # Records are read before the cluster: a record written after this read belongs to a
        # namespace made after it too, so a namespace missing from the list below is truly gone.
        async with self._asessions() as session:
            records, revoked = await session.run_sync(_records_and_revoked)
        live = {
            ns["metadata"]["name"]: ns
            async for ns in self._namespaces.alist_all(label_selector=MANAGED, metadata_only=True)
        }
        has = {
            kind: {
                item["metadata"]["namespace"]
                async for item in storage.alist_all(label_selector=MANAGED, metadata_only=True)
                if item["metadata"]["name"] == BASELINE_NAME
            }
            for kind, storage in self._baseline.items()
        }
        report.namespaces = len(live)
        for name, namespace in live.items():
            if stop is not None and stop.is_set():
                report.stopped = True
                return report
            try:
                await self._converge(name, namespace, records.get(name), has, revoked, report)
            except KuberthError as error:
                report.failed[name] = error.message
        for name, (_, personal) in records.items():
            # A personal record stays: the owner's next sign-in makes the namespace again.
            if name not in live and not personal:
                async with self._asessions() as session:
                    await aforget(session, name)
                report.forgotten.append(name)
        await self._release_orphan_hosts(report)
        return report

    async def _release_orphan_hosts(self, report: ReconcileReport) -> None:
        """A separate step: host claims of Ingresses that are gone (a deleted namespace's, a
        delete the webhook missed while Kuberth was down) are released."""
        if self._hosts is None:
            return
        try:
            report.released_hosts = await self._hosts.arelease_orphans(
                older_than=self._orphan_grace
            )
        except KuberthError as error:
            report.failed["(ingress host claims)"] = error.message

    async def _converge(
        self,
        name: str,
        namespace: dict[str, object],
        record: tuple[int, bool] | None,
        has: Mapping[str, set[str]],
        revoked: set[int],
        report: ReconcileReport,
    ) -> None:
        metadata = namespace["metadata"]
        assert isinstance(metadata, dict)
        labels: dict[str, str] = metadata.get("labels") or {}
        owner = labels.get(OWNER_ID, "")
        if not owner.isdigit() or metadata.get("deletionTimestamp"):
            return
        github_id = int(owner)
        if record is not None and record[0] != github_id:
            # The label and the database disagree: someone relabelled it. Touch nothing.
            log.warning("namespace %s is recorded for %s but labelled %s", name, record[0], owner)
            return
        # A revoked owner's baseline is kept complete but for its access, which stays away
        # (whoever put the RoleBinding back: an older replica, a restore undone by hand).
        access = github_id not in revoked
        needed = {kind: names for kind, names in has.items() if access or kind != ACCESS_KIND}
        if any(name not in namespaces for namespaces in needed.values()):
            await self._provisioner.aapply_baseline(name, github_id=github_id, access=access)
            report.completed.append(name)
        if not access and name in has.get(ACCESS_KIND, set()):
            # Apps first (as the tenant, while the RoleBinding still lets Kuberth act for them).
            if self._withdraw is not None:
                await self._withdraw(name, github_id=github_id)
            else:
                await self._baseline[ACCESS_KIND].adelete(BASELINE_NAME, namespace=name)
            report.withheld.append(name)
        if record is None:
            async with self._asessions() as session:
                recorded = await session.run_sync(
                    _record, name, github_id, labels.get(PERSONAL) == "true"
                )
            if recorded:
                report.recorded.append(name)

    async def run(self, stop: threading.Event, *, interval: float) -> None:
        """Reconcile now and then every ``interval`` seconds until ``stop`` is set or the task is
        cancelled (leadership lost, shutdown); the sweep step runs after each pass and every
        ``sweep_interval`` seconds in between.

        Each pass runs on the event loop (the database and Kubernetes through their async
        clients); cancelled, it is told to stop and awaited: it ends at its next namespace, as
        the worker thread it replaces did, so no namespace is left half-way by a cancel and the
        pass is counted as stopped. The sweep runs on the event loop too (GitHub, the database
        and Kubernetes awaited) and is ended the same way, at its next user.
        """
        next_pass = time.monotonic()
        while not stop.is_set():
            if time.monotonic() >= next_pass:
                await _to_the_end(self._pass(stop), stop)
                next_pass = time.monotonic() + interval
            if self._sweep is not None and not stop.is_set():
                await _to_the_end(self._sweep(stop), stop)
            wait = next_pass - time.monotonic()
            if self._sweep is not None:
                wait = min(wait, self._sweep_interval)
            await asyncio.sleep(max(wait, 0.0))

    async def _pass(self, stop: Stop) -> None:
        started = time.monotonic()
        try:
            report = await self.areconcile(stop=stop)
        except KuberthError as error:
            PASSES.labels(result="error").inc()
            log.warning("reconcile failed, retrying in the next pass: %s", error.message)
            return
        _observe(report, seconds=time.monotonic() - started)
        log.info(
            "%s %d namespaces: %d completed, %d recorded, %d forgotten, %d failed",
            "stopped early reconciling" if report.stopped else "reconciled",
            report.namespaces,
            len(report.completed),
            len(report.recorded),
            len(report.forgotten),
            len(report.failed),
        )
        for name, why in report.failed.items():
            log.warning("could not reconcile namespace %s: %s", name, why)


def _records_and_revoked(session: Session) -> tuple[dict[str, tuple[int, bool]], set[int]]:
    """Every namespace's owner and whether it is personal, and the revoked owners (in an async
    session)."""
    records = {row.name: (row.owner_id, row.personal) for row in NamespaceStore(session).all()}
    return records, UserStore(session).revoked_ids()


def _record(session: Session, name: str, github_id: int, personal: bool) -> bool:
    """Record a namespace made by a request that died before writing it down (in an async
    session).

    Only for owners who have signed in before: a first sign-up cut short is completed by the
    owner's next sign-in, which adopts the namespace by its owner label.
    """
    if UserStore(session).get(github_id) is None:
        return False
    store = NamespaceStore(session)
    if personal and store.personal(github_id) is not None:
        return False  # a second personal namespace: leave it to the operator
    store.record(name=name, owner_id=github_id, personal=personal)
    return True


async def _to_the_end(work: Awaitable[object], stop: threading.Event) -> None:
    """Await ``work`` (a pass, or a sweep). Cancelled, it sets ``stop`` and waits
    for the work to end at its next namespace (or user): no pass goes on behind a new leader's
    back, or after the clients it uses are closed, and none is cut half-way through a
    namespace."""
    running = asyncio.ensure_future(work)
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait({running})
        raise


def _observe(report: ReconcileReport, *, seconds: float) -> None:
    """The pass's results as metrics: what an operator alerts on (failures, a stale last run)."""
    TENANT_NAMESPACES.set(report.namespaces)
    if report.stopped:
        PASSES.labels(result="stopped").inc()
    else:
        PASSES.labels(result="ok").inc()
        PASS_SECONDS.observe(seconds)
        LAST_SUCCESS.set_to_current_time()
    for action, count in (
        ("completed", len(report.completed)),
        ("recorded", len(report.recorded)),
        ("forgotten", len(report.forgotten)),
        ("withheld", len(report.withheld)),
        ("failed", len(report.failed)),
    ):
        NAMESPACES_FIXED.labels(action=action).inc(count)
