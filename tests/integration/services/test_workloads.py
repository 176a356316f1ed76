"""A namespace page's recent events, read as the tenant on the event loop."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest
from kubernetes import client

from kuberth.exceptions import NotFoundError
from kuberth.http.services import Services
from kuberth.services.principal import Principal
from kuberth.storage.github import GitHubUser
from tests.integration.slowing import DELAY, ticks_while

pytestmark = pytest.mark.anyio


async def test_recent_events_come_with_the_event_loop_free_while_kubernetes_answers(
    slow_services: Services, admin_api: client.ApiClient, new_id: Callable[[], int]
) -> None:
    """The list of events, answered DELAY late (the ownership check is the database's)."""
    tenant, namespace = await slow_services.users.asign_in(
        GitHubUser(new_id(), f"e{secrets.token_hex(3)}", None)
    )
    client.CoreV1Api(admin_api).create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "seen"},
            "involvedObject": {"kind": "Deployment", "name": "web", "namespace": namespace},
            "reason": "Tested",
            "message": "an event of the test's",
            "type": "Normal",
        },
    )
    started = time.monotonic()

    events, ticks = await ticks_while(slow_services.workloads.recent_events(tenant, namespace))

    took = time.monotonic() - started
    assert [(e["reason"], e["object"]) for e in events] == [("Tested", "Deployment/web")]
    assert took >= DELAY
    assert ticks >= 5, (ticks, took)  # ~20 on an idle machine; none had it held the loop
    stranger = Principal(new_id(), "stranger", None, is_admin=False)
    with pytest.raises(NotFoundError):
        await slow_services.workloads.recent_events(stranger, namespace)
