"""Services wired as the server wires them, for tests that drive their async methods on the test's
own event loop (marked ``anyio``): against the real API server, on each database kind, or through
a slow network."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from kuberth.http.services import Services, build_services
from kuberth.settings import Settings
from tests.integration.slowing import DELAY, SlowProxy, server_port, through


async def _close(services: Services) -> None:
    """Close what the services opened; the async pools on this loop, to which they belong."""
    for informer in services.informers:
        informer.stop()
    services.kubernetes.close()
    await services.kubernetes.aclose()
    await services.github.aclose()  # the membership checks' client too
    await services.database.adispose()


@pytest.fixture
async def build(
    kuberth_settings: Callable[..., Settings], database_url: str, anyio_backend: str
) -> AsyncIterator[Callable[..., Services]]:
    """Services (with these settings) on SQLite and on PostgreSQL, against the real API server;
    closed after the test."""
    built: list[Services] = []

    def make(**overrides: object) -> Services:
        services = build_services(kuberth_settings(database_url=database_url, **overrides))
        built.append(services)
        services.provisioner.ensure_cluster_objects()
        return services

    yield make
    for services in built:
        await _close(services)


@pytest.fixture
async def slow_services(
    kuberth_settings: Callable[..., Settings], kubeconfig: Path, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Services]:
    """The services with an API server that answers every request DELAY seconds late."""
    with SlowProxy(server_port(kubeconfig), delay=DELAY) as proxy:
        slow = through(kubeconfig, proxy.port, tmp_path / "slow.kubeconfig")
        built = build_services(kuberth_settings(kubeconfig=slow))
        built.provisioner.ensure_cluster_objects()
        yield built
        await _close(built)
