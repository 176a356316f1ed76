"""Readiness: whether this process can serve requests that need its dependencies."""

from __future__ import annotations

from typing import Protocol


class ReadinessProbe(Protocol):
    async def acheck_ready(self) -> None:
        """Return when the dependency is usable; raise a `KuberthError` when it is not."""


class HealthService:
    """Checks every dependency a request may need; more join as Kuberth grows (the database)."""

    def __init__(self, *, probes: dict[str, ReadinessProbe]) -> None:
        self._probes = probes

    async def acheck_ready(self) -> dict[str, str]:
        """Run every probe, one after the other, on the event loop (no thread is held while a
        dependency answers), returning ``{dependency: "ok"}``.

        Raises:
            KuberthError: the first dependency that is not usable, as the probe raised it.
        """
        for probe in self._probes.values():
            await probe.acheck_ready()
        return dict.fromkeys(self._probes, "ok")
