"""The hosts of an Ingress that Kuberth's API writes: checked and claimed in one transaction.

A claim reads what the host rules need (the namespace's owner, the namespaces whose subdomains
could also hold each host), checks the rules and inserts one row per host, all in one database
transaction: a refusal, by the rules or by a holder, leaves nothing claimed and needs no second
transaction to undo. Whether an Ingress outside Kuberth's claims holds a host (the watch-fed index,
see :mod:`~kuberth.services.hosts`) is asked before the transaction opens, since a call to
Kubernetes must not hold one open; its answer is given after the rules', as before.

The claim is held before the Ingress is written and released if that write fails (a database
transaction cannot span a Kubernetes write). The admission webhook claims the same way for the
Ingresses written to Kubernetes directly (kubectl), and checks a dry run without holding anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection

from kuberth.exceptions import ConflictError, InvalidInputError, NotFoundError
from kuberth.services.hosts import HostClaims, held_by, ingress_hosts
from kuberth.services.policy import WorkloadPolicy
from kuberth.storage.database import hosts as host_rows
from kuberth.storage.database.engine import AsyncSessions
from kuberth.storage.kubernetes.api import JSON

#: Where each host of an Ingress is written: (field, host).
HostFields = list[tuple[str, str]]


def host_fields(policy: WorkloadPolicy, manifest: JSON) -> HostFields:
    """The Ingress's structural rules (its class defaulted to the first allowed, in
    ``manifest``); returns every (field, host) the host rules are to check."""
    spec = manifest.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise InvalidInputError("spec must be an object", field="spec")
    spec.setdefault("ingressClassName", policy.ingress_classes[0])
    return policy.check_ingress(manifest)


def candidates(policy: WorkloadPolicy, fields: HostFields) -> list[str]:
    """The namespaces whose subdomains could hold the hosts: the rows the rules read."""
    return [c for _, host in fields for c in policy.host_namespaces(host)]


def check_hosts(
    policy: WorkloadPolicy,
    fields: HostFields,
    *,
    namespace: str,
    owner_id: int,
    taken: Collection[str],
) -> list[str]:
    """Every host in the namespace's subdomain or a custom domain of its owner; returns the
    hosts, sorted (TLS hosts included)."""
    for field, host in fields:
        policy.check_host(host, field=field, namespace=namespace, owner_id=owner_id, taken=taken)
    return sorted({host for _, host in fields})


class _DryRunError(Exception):
    """Leaves a claim's transaction without committing what it did (a dry run)."""


class IngressClaims:
    """Host claims for the Ingresses the API writes (alone, or as an app's part), and for those
    the admission webhook is asked about."""

    def __init__(
        self, *, hosts: HostClaims, policy: WorkloadPolicy, asessions: AsyncSessions
    ) -> None:
        self._hosts = hosts
        self._policy = policy
        self._asessions = asessions

    async def aclaim(
        self, manifest: JSON, *, namespace: str, ingress: str, dry_run: bool = False
    ) -> list[str]:
        """Check the Ingress's hosts and hold them for it (one transaction); returns them.
        ``dry_run`` checks everything and holds nothing.

        Raises:
            InvalidInputError, ForbiddenError: a rule refuses a host (naming its field).
            ConflictError: another Ingress holds one of them; nothing is held.
            KubernetesUnavailableError: the index of Ingresses is not ready.
        """
        fields = host_fields(self._policy, manifest)
        wanted = sorted({host for _, host in fields})
        clash = await self._hosts.aheld_elsewhere(wanted, namespace=namespace, ingress=ingress)
        try:
            return await self._aclaim(fields, namespace, ingress, clash, dry_run=dry_run)
        except _DryRunError:
            return wanted  # every check passed; rolled back, nothing is held

    async def _aclaim(
        self,
        fields: HostFields,
        namespace: str,
        ingress: str,
        clash: str | None,
        *,
        dry_run: bool,
    ) -> list[str]:
        async with self._asessions() as session:  # an error raised inside rolls it all back
            owners = await host_rows.anamespace_owners(
                session, [namespace, *candidates(self._policy, fields)]
            )
            if namespace not in owners:  # access was checked before: forgotten since
                raise NotFoundError(f"namespace {namespace} not found")
            hosts = check_hosts(
                self._policy, fields, namespace=namespace, owner_id=owners[namespace], taken=owners
            )
            holder = await host_rows.aclaim(
                session, hosts, namespace=namespace, ingress=ingress, owner_id=owners[namespace]
            )
            if holder is not None:
                raise held_by(holder, namespace=namespace)
            if clash is not None:
                raise ConflictError(f"host {clash} is already used", field="host")
            if dry_run:
                raise _DryRunError
        return hosts

    async def arelease(self, *, namespace: str, ingress: str, keep: Collection[str] = ()) -> None:
        """Release this Ingress's hosts, except ``keep``."""
        await self._hosts.arelease(namespace=namespace, ingress=ingress, keep=keep)

    async def ahold_stored(
        self, stored: JSON | None, *, namespace: str, ingress: str, owner_id: int
    ) -> None:
        """After a failed write, the Ingress holds exactly the hosts of its stored version
        (``stored``; None: there is none) again, not those the failed write claimed. A host
        another Ingress claimed meanwhile stays its own."""
        held = list(ingress_hosts(stored)) if stored else []
        await self._hosts.arelease(namespace=namespace, ingress=ingress, keep=held)
        for host in held:
            with contextlib.suppress(ConflictError):
                await self._hosts.aclaim(
                    [host], namespace=namespace, ingress=ingress, owner_id=owner_id
                )
