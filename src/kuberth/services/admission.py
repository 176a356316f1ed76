"""Kuberth's validating admission webhook: Ingress host ownership for every writer.

Kubernetes asks it about every create, update and delete of an Ingress in a tenant namespace,
whoever sends it — a tenant's kubectl, Kuberth's API acting as the tenant, a controller. The
answer applies the same rules as the API (a host in the namespace's subdomain, the longest
namespace winning an ambiguous host, a custom domain verified for the owner) and holds the hosts in
the same table of claims, so two writers can never both get a host. The ValidatingAdmissionPolicies
still check what they can on their own; this is what needs other objects to decide.

Also here: its certificates and its registration with the API server.
"""

from __future__ import annotations

import base64
import copy
import datetime
import logging
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from kuberth.certificates import SERVER_AUTH, Issued, derived_key, issue, new_ca, same_key
from kuberth.exceptions import KuberthError, UnavailableError
from kuberth.services.builders.admission import HOST_WEBHOOK, ingress_host_webhook
from kuberth.services.host_claims import IngressClaims
from kuberth.services.hosts import ingress_hosts
from kuberth.storage.database.engine import AsyncReads
from kuberth.storage.database.users import afind_namespace
from kuberth.storage.kubernetes.api import JSON
from kuberth.storage.kubernetes.resources import ValidatingWebhookConfigurationStorage

log = logging.getLogger(__name__)

#: The webhook's CA and serving certificates live this long (a process serves one serving
#: certificate for its whole life; the CA's key never changes while the secret key does not).
VALIDITY = datetime.timedelta(days=10 * 365)
CA_NAME = "kuberth-admission-ca"


@dataclass(frozen=True)
class WebhookTls:
    """The webhook's serving certificate and the CA the API server trusts it by."""

    ca: Issued
    serving: Issued

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca.cert_pem).decode()


class WebhookRegistration:
    """The webhook's certificate and its registration with the API server.

    Every replica must present a certificate the one registered CA bundle vouches for. Rather
    than keep a CA key in a Secret (Kuberth holds no rights on Secrets), the CA's key is derived
    from ``KUBERTH_SECRET_KEY``, which the replicas already share: each replica signs a serving
    certificate of its own with it, and the bundle is rewritten only when the registered CA's key
    is not this one (a new secret key, or the first start).
    """

    def __init__(
        self,
        *,
        configurations: ValidatingWebhookConfigurationStorage,
        secret_key: str,
        timeout_seconds: int,
    ) -> None:
        self._configurations = configurations
        self._secret = secret_key.encode()
        self._timeout = timeout_seconds

    def certificates(self, host: str) -> WebhookTls:
        """A CA (derived from the secret key; a random one when there is none, in development)
        and a serving certificate for ``host`` signed by it."""
        key = derived_key(self._secret, purpose=CA_NAME) if self._secret else None
        ca = new_ca(CA_NAME, validity=VALIDITY, key=key)
        return WebhookTls(ca, issue(ca, host, usage=SERVER_AUTH, validity=VALIDITY, hosts=[host]))

    def register(self, base_url: str, tls: WebhookTls) -> None:
        """Apply the ValidatingWebhookConfiguration that sends Ingress writes to ``base_url``,
        unless the registered one already says so with this CA's key."""
        wanted = ingress_host_webhook(
            base_url=base_url, ca_bundle=tls.ca_bundle, timeout_seconds=self._timeout
        )
        current = self._configurations.read(HOST_WEBHOOK)
        if current is not None and _same_but_bundle(current, wanted, tls):
            return
        self._configurations.apply(wanted)
        log.info("registered the admission webhook at %s", base_url)


def _same_but_bundle(current: JSON, wanted: JSON, tls: WebhookTls) -> bool:
    """Whether ``current`` is ``wanted`` but perhaps for the CA certificate's bytes: another
    replica's copy of the same CA (same key) vouches for this replica's certificate too."""
    hooks = current.get("webhooks") or []
    if len(hooks) != len(wanted["webhooks"]):
        return False
    for have, want in zip(hooks, wanted["webhooks"], strict=True):
        bundle = (have.get("clientConfig") or {}).get("caBundle") or ""
        try:
            registered = x509.load_pem_x509_certificate(base64.b64decode(bundle))
        except ValueError:
            return False
        if not same_key(registered, tls.ca.cert):
            return False
        client = {k: v for k, v in (have.get("clientConfig") or {}).items() if k != "caBundle"}
        wanted_client = {k: v for k, v in want["clientConfig"].items() if k != "caBundle"}
        if client != wanted_client:
            return False
        for field in ("name", "failurePolicy", "timeoutSeconds", "rules", "namespaceSelector"):
            if not _contains(have.get(field), want.get(field)):
                return False
    return True


def _contains(have: Any, want: Any) -> bool:
    """``want`` is in ``have``, which may carry defaults the API server filled in."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(_contains(h, w) for h, w in zip(have, want, strict=True))
        )
    return bool(have == want)


class IngressAdmission:
    """Answers the API server's AdmissionReview requests about Ingresses, on the event loop:
    the claim is the one the API's own writes make (:class:`IngressClaims`)."""

    def __init__(self, *, areads: AsyncReads, claims: IngressClaims) -> None:
        self._areads = areads
        self._claims = claims

    async def areview(self, request: JSON) -> JSON:
        """The ``response`` of an AdmissionReview for its ``request``."""
        uid = request.get("uid", "")
        try:
            await self._adecide(request)
        except UnavailableError as error:
            return _refused(uid, 503, f"Kuberth cannot check Ingress hosts now: {error.message}")
        except KuberthError as error:
            return _refused(uid, error.status_code, error.message)
        return {"uid": uid, "allowed": True}

    async def _adecide(self, request: JSON) -> None:
        namespace = str(request.get("namespace") or "")
        operation = request.get("operation")
        dry_run = bool(request.get("dryRun"))
        async with self._areads() as connection:
            row = await afind_namespace(connection, namespace)
        if row is None:
            return  # not a namespace Kuberth hands out (the selector matched a stray label)
        if operation == "DELETE":
            if not dry_run:
                name = str(request.get("name") or "")
                await self._claims.arelease(namespace=namespace, ingress=name)
            return
        obj: dict[str, Any] = copy.deepcopy(request.get("object") or {})
        name = str((obj.get("metadata") or {}).get("name") or request.get("name") or "")
        hosts = await self._claims.aclaim(obj, namespace=namespace, ingress=name, dry_run=dry_run)
        if operation == "UPDATE" and not dry_run:
            old = ingress_hosts(request.get("oldObject") or {})
            if set(old) - set(hosts):
                await self._claims.arelease(namespace=namespace, ingress=name, keep=hosts)


def _refused(uid: str, code: int, message: str) -> JSON:
    return {"uid": uid, "allowed": False, "status": {"code": code, "message": message}}
