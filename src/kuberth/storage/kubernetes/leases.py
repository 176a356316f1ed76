"""Leases (coordination.k8s.io/v1): the lock replicas elect their one reconciler with.

The resource verbs of every kind are all leader election needs: ``read``, ``create`` (a 409 when a
replica created it first) and ``replace`` with the read ``resourceVersion`` (a 409 when another
replica wrote it in between). The time helpers keep the Lease's MicroTime format in one place.
"""

from __future__ import annotations

import datetime

from kuberth.storage.kubernetes.resources import Kind, ResourceStorage


class LeaseStorage(ResourceStorage):
    kind = Kind("Lease", "coordination.k8s.io/v1", "leases")


def micro_time(moment: datetime.datetime) -> str:
    """A Lease's ``acquireTime``/``renewTime``: RFC 3339 in UTC, to the microsecond."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(value: str | None) -> datetime.datetime | None:
    """The moment a MicroTime (or a plain RFC 3339 time) names; None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
