"""A revoked user's apps stop serving, and come back as they were when access is given back.

Every Deployment of the user's with replicas above zero is scaled to zero, its count remembered
in the annotation ``kuberth.dev/replicas-before-revoke`` in the same merge patch; giving access
back puts each remembered count back and removes the annotation.

The patches go out as the tenant (impersonation), like every other write to a tenant's workloads:
Kuberth's own identity gets no write access to Deployments. So the order matters: apps stop while
the tenant's RoleBinding is still there (after the kubeconfig service account is gone and the
database already refuses the user, so nobody but Kuberth can act as them meanwhile), and start
after it is back (the API server's authorizer may take a moment to see a new RoleBinding: a 403
then is retried for a bounded time).
"""

from __future__ import annotations

import logging
import time

import anyio

from kuberth.services.builders.tenant import TENANTS_GROUP, tenant_user
from kuberth.storage.kubernetes.api import JSON, Identity
from kuberth.storage.kubernetes.errors import KubernetesForbiddenError
from kuberth.storage.kubernetes.resources import DeploymentStorage

log = logging.getLogger(__name__)

#: Where a Deployment stopped by a revoke keeps its replica count.
REPLICAS_BEFORE_REVOKE = "kuberth.dev/replicas-before-revoke"


def tenant_identity(github_id: int) -> Identity:
    return Identity(user=tenant_user(github_id), groups=(TENANTS_GROUP,))


def _annotations(deployment: JSON) -> dict[str, str]:
    return deployment.get("metadata", {}).get("annotations") or {}


class AppSuspension:
    """Stops and restarts all the Deployments of one user's namespace."""

    def __init__(self, deployments: DeploymentStorage, *, access_wait: float = 10.0) -> None:
        self._deployments = deployments
        self._access_wait = access_wait

    async def astop(self, namespace: str, *, github_id: int) -> list[str]:
        """Scale every running Deployment in ``namespace`` to zero, remembering its count; returns
        the ones stopped now. One already stopped by a revoke keeps the count it remembers (a second
        revoke must not overwrite it with 0); one at zero without the annotation stays so.

        Raises:
            KubernetesForbiddenError: the tenant has no access here any more (its RoleBinding
                is gone).
        """
        identity = tenant_identity(github_id)
        listed = await self._deployments.alist(namespace=namespace, identity=identity)
        stopped = []
        for name, patch in _stops(listed):
            await self._deployments.apatch(name, patch, namespace=namespace, identity=identity)
            stopped.append(name)
        return stopped

    async def aresume(self, namespace: str, *, github_id: int) -> list[str]:
        """Give every Deployment a revoke stopped its count back, and drop the annotation; others
        are left alone. Returns the ones resumed. A 403 (the tenant's RoleBinding, just applied,
        not yet seen by the authorizer) is tried again for up to ``access_wait`` seconds, asleep
        on the event loop."""
        deadline = time.monotonic() + self._access_wait
        delay = 0.05
        while True:
            try:
                return await self._aresume(namespace, github_id=github_id)
            except KubernetesForbiddenError:
                if time.monotonic() + delay > deadline:
                    raise
                await anyio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _aresume(self, namespace: str, *, github_id: int) -> list[str]:
        identity = tenant_identity(github_id)
        listed = await self._deployments.alist(namespace=namespace, identity=identity)
        resumed = []
        for deployment in listed.get("items") or []:
            remembered = _annotations(deployment).get(REPLICAS_BEFORE_REVOKE)
            if remembered is None:
                continue
            name = deployment["metadata"]["name"]
            patch: JSON = {"metadata": {"annotations": {REPLICAS_BEFORE_REVOKE: None}}}
            if remembered.isdigit():
                patch["spec"] = {"replicas": int(remembered)}
            else:  # not written by Kuberth: nothing to give back but the annotation's removal
                log.warning("deployment %s in %s: bad %s", name, namespace, REPLICAS_BEFORE_REVOKE)
            await self._deployments.apatch(name, patch, namespace=namespace, identity=identity)
            resumed.append(name)
        return resumed


def _stops(listed: JSON) -> list[tuple[str, JSON]]:
    """The patch that stops each running Deployment of a list, by name."""
    stops = []
    for deployment in listed.get("items") or []:
        replicas = deployment.get("spec", {}).get("replicas", 1)
        if not replicas:
            continue
        patch: JSON = {"spec": {"replicas": 0}}
        if REPLICAS_BEFORE_REVOKE not in _annotations(deployment):
            patch["metadata"] = {"annotations": {REPLICAS_BEFORE_REVOKE: str(replicas)}}
        stops.append((deployment["metadata"]["name"], patch))
    return stops
