"""Raw JSON requests to the Kubernetes API, as Kuberth or as an impersonated tenant.

The generated client's models are skipped on purpose: responses stay plain JSON (no conversion into
model objects on every call), and each call can carry its own impersonation headers over the one
shared connection pool. ``ApiException``-style failures are translated here, once, into Kuberth's
exceptions with the kind, name and Kubernetes' own message.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import urllib3
from kubernetes import client
from prometheus_client import Counter, Histogram

from kuberth.exceptions import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    KubernetesUnavailableError,
    NamespaceTerminatingError,
    NotFoundError,
    UpstreamError,
)

log = logging.getLogger(__name__)

JSON = dict[str, Any]

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "kuberth"
#: Asks list requests for metadata only (PartialObjectMetadataList): a fraction of the bytes.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

#: Per request sent, by verb (the HTTP method, or WATCH) and code (the HTTP status, or
#: "unreachable"); a watch's latency is the time to its response's headers.
REQUESTS = Counter(
    "kuberth_kubernetes_requests_total",
    "Requests sent to the Kubernetes API server",
    ["verb", "code"],
)
LATENCY = Histogram(
    "kuberth_kubernetes_request_duration_seconds",
    "Time until the Kubernetes API server answered a request (its headers)",
    ["verb"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
THROTTLED = Counter(
    "kuberth_kubernetes_throttled_retries_total",
    "Requests the API server answered with 429 that Kuberth sent again after waiting",
)
QUOTA_CONFLICTS = Counter(
    "kuberth_kubernetes_quota_conflict_retries_total",
    "Requests refused by quota admission's own 409 on a ResourceQuota that Kuberth sent again",
)


@dataclass(frozen=True)
class Identity:
    """Whom a request acts as. Requests without one act as Kuberth itself."""

    user: str
    groups: tuple[str, ...] = ()

    def headers(self) -> dict[str, str]:
        headers = {"Impersonate-User": self.user}
        if self.groups:
            # One group is all Kuberth impersonates; repeated headers would need a multi-dict.
            (headers["Impersonate-Group"],) = self.groups
        return headers


class KubernetesApi:
    """The one place Kuberth sends HTTP requests to the API server."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        timeout: float,
        retry_after: int,
        throttle_budget: float = 3.0,
    ) -> None:
        self._api = api_client
        self.timeout = timeout
        self.retry_after = retry_after
        self.throttle_budget = throttle_budget
        #: Requests sent so far, for measurements (/metrics counts them by verb and code too).
        self.requests_sent = 0
        #: Requests the API server refused with 429 and Kuberth sent again after waiting.
        self.throttled_retries = 0
        #: For streams read on the event loop (log follows), made there on first use.
        self._async: httpx.AsyncClient | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: JSON | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        identity: Identity | None = None,
        what: str = "",
    ) -> JSON:
        """Send one request and return the decoded JSON body.

        ``what`` names the object for error messages ("namespace alice").

        Raises:
            NotFoundError, ConflictError, ForbiddenError, InvalidInputError, BadRequestError:
                Kubernetes refused the request (4xx), with its message.
            KubernetesUnavailableError: unreachable, timed out, still throttled (429) after
                waiting as long as ``throttle_budget`` allows, or 503.
            UpstreamError: any other failure on the API server's side.
        """
        response = self._send_patiently(
            method, path, query, body, content_type, identity, self.timeout, accept
        )
        data = self._body(response, what or path)
        decoded: JSON = json.loads(data) if data else {}
        return decoded

    def request_text(
        self,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        identity: Identity | None = None,
        what: str = "",
    ) -> str:
        """GET a text body (a pod's log), decoded as UTF-8 (bad bytes replaced).

        Raises:
            The same errors as :meth:`request`.
        """
        response = self._send_patiently(
            "GET", path, query, None, None, identity, self.timeout, "text/plain, */*"
        )
        return bytes(self._body(response, what or path)).decode("utf-8", errors="replace")

    def _body(self, response: Any, what: str) -> bytes:
        """The response's body; a refusal or failure as its typed error."""
        data: bytes = response.read()
        if response.status >= 400:
            raise translate_error(
                response.status, data, response.headers, what=what, retry_after=self.retry_after
            )
        return data

    @contextlib.asynccontextmanager
    async def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, str | int | bool],
        identity: Identity | None = None,
        what: str = "",
    ) -> AsyncIterator[AsyncIterator[str]]:
        """GET a streamed text body (a pod's log with ``follow``) on the event loop, line by line.

        The same server, TLS and credentials as every other request (and the same impersonation),
        through an ``httpx.AsyncClient`` of its own, so a follow holds no thread. Leaving the
        context closes the upstream response, whatever ended it (the client went away, a cancel).
        Only connecting is bounded by the request timeout: a quiet log may send nothing for long,
        so the caller bounds the whole stream.

        Raises:
            The same errors as :meth:`request`, for the response's status.
        """
        client = self._async_client()
        headers = {"Accept": "text/plain, */*"}
        for auth in self._api.configuration.auth_settings().values():  # a refreshed token, too
            headers[auth["key"]] = str(auth["value"])
        if identity is not None:
            headers.update(identity.headers())
        params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.items()}
        self.requests_sent += 1
        started = time.perf_counter()
        try:
            async with client.stream("GET", path, params=params, headers=headers) as response:
                LATENCY.labels(verb="STREAM").observe(time.perf_counter() - started)
                REQUESTS.labels(verb="STREAM", code=str(response.status_code)).inc()
                if response.status_code >= 400:
                    raise translate_error(
                        response.status_code,
                        await response.aread(),
                        response.headers,
                        what=what or path,
                        retry_after=self.retry_after,
                    )
                yield _lines(response)
        except httpx.TransportError as error:
            REQUESTS.labels(verb="STREAM", code="unreachable").inc()
            raise KubernetesUnavailableError(
                f"the stream of {what or path} failed ({type(error).__name__})",
                retry_after=self.retry_after,
            ) from error

    def _async_client(self) -> httpx.AsyncClient:
        if self._async is None:
            configuration = self._api.configuration
            # The TLS the synchronous client has: the kubeconfig's CA and client certificate.
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
            if not configuration.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
            self._async = httpx.AsyncClient(
                base_url=configuration.host,
                verify=context,
                timeout=httpx.Timeout(self.timeout, read=None),
            )
        return self._async

    async def aclose(self) -> None:
        """Close the event loop's client (the streams'), if one was made."""
        if self._async is not None:
            await self._async.aclose()
            self._async = None

    def check_ready(self) -> None:
        """Ask the API server's ``/readyz`` (one request).

        Raises:
            KubernetesUnavailableError: unreachable, too slow, or not ready.
        """
        response = self._send("GET", "/readyz", None, None, None, None, self.timeout)
        response.read()
        if response.status != 200:
            raise KubernetesUnavailableError(
                f"the Kubernetes API server is not ready ({response.status} {response.reason})",
                retry_after=self.retry_after,
            )

    def close(self) -> None:
        self._api.close()

    @property
    def server_url(self) -> str:
        """The API server URL Kuberth itself uses."""
        host: str = self._api.configuration.host
        return host

    def ca_pem(self) -> bytes | None:
        """The CA bundle Kuberth trusts the API server with, if one is configured."""
        path = self._api.configuration.ssl_ca_cert
        if not path:
            return None
        with open(path, "rb") as file:  # noqa: PTH123 - a path the client library chose
            return file.read()

    def watch(
        self,
        path: str,
        *,
        query: Mapping[str, str | int | bool],
        timeout: float,
        identity: Identity | None = None,
        what: str = "",
    ) -> Iterator[JSON]:
        """Stream watch events (``{"type", "object"}``) until the server ends the watch.

        The server ends it after ``timeoutSeconds``; the socket read timeout is a little longer so
        a dead connection cannot hang the caller.
        """
        params = {**query, "watch": "true", "timeoutSeconds": max(1, int(timeout + 0.999))}
        response = self._send_patiently(
            "GET", path, params, None, None, identity, (self.timeout, timeout + 5)
        )
        if response.status >= 400:
            raise translate_error(
                response.status,
                response.read(),
                response.headers,
                what=what or path,
                retry_after=self.retry_after,
            )
        raw = response.response
        buffer = b""
        try:
            for chunk in raw.stream(amt=None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubernetesUnavailableError(
                f"the watch on {what or path} was cut off ({type(error).__name__})",
                retry_after=self.retry_after,
            ) from error
        finally:
            raw.release_conn()

    def _send_patiently(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int | bool] | None,
        body: JSON | None,
        content_type: str | None,
        identity: Identity | None,
        timeout: float | tuple[float, float],
        accept: str | None = None,
    ) -> Any:
        """Send, sending again after refusals the caller did not cause, within the budget.

        Two refusals happen before anything is stored, so sending any verb again is safe:
        API Priority and Fairness' 429 (waited out as its Retry-After asks), and quota
        admission's 409 on the namespace's ResourceQuota (it lost a race updating the quota's
        usage with a concurrent write and ran out of its own retries). The last refusal is
        returned when waiting longer would exceed the budget; the caller translates it (a 503
        carrying Retry-After, or the honest 409).
        """
        deadline = time.monotonic() + self.throttle_budget
        for attempt in itertools.count():
            response = self._send(
                method, path, query, body, content_type, identity, timeout, accept
            )
            if response.status == 429:
                # At least the server's Retry-After; growing, so a missing or zero one can't spin.
                wait = max(_retry_after_seconds(response.headers, default=0), 0.25 * 2**attempt)
                counter, why = THROTTLED, "throttled"
            elif _is_quota_conflict(response, path):
                wait, counter, why = 0.05 * 2**attempt, QUOTA_CONFLICTS, "quota admission refused"
            else:
                break
            if time.monotonic() + wait > deadline:
                return response
            response.read()  # frees the connection for the next attempt
            if counter is THROTTLED:
                self.throttled_retries += 1
            counter.inc()
            log.info("the API server %s %s %s; retrying in %ss", why, method, path, wait)
            time.sleep(wait)
        return response

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int | bool] | None,
        body: JSON | None,
        content_type: str | None,
        identity: Identity | None,
        timeout: float | tuple[float, float],
        accept: str | None = None,
    ) -> Any:
        self.requests_sent += 1
        headers = {"Accept": accept or "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        if identity is not None:
            headers.update(identity.headers())
        params = [
            (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()
        ]
        method, url, headers, serialized, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        verb = "WATCH" if (query or {}).get("watch") == "true" else method
        started = time.perf_counter()
        try:
            response = self._api.call_api(
                method, url, header_params=headers, body=serialized, _request_timeout=timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            REQUESTS.labels(verb=verb, code="unreachable").inc()
            raise KubernetesUnavailableError(
                f"the Kubernetes API server is unreachable ({type(error).__name__})",
                retry_after=self.retry_after,
            ) from error
        except client.ApiException as error:  # TLS failures surface as status 0
            REQUESTS.labels(verb=verb, code="unreachable").inc()
            raise KubernetesUnavailableError(
                f"the Kubernetes API server is unreachable ({error.reason})",
                retry_after=self.retry_after,
            ) from error
        LATENCY.labels(verb=verb).observe(time.perf_counter() - started)
        REQUESTS.labels(verb=verb, code=str(response.status)).inc()
        return response


async def _lines(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        yield line


def translate_error(
    status: int, data: bytes, headers: Mapping[str, str], *, what: str, retry_after: int
) -> Exception:
    """Kuberth's exception for a Kubernetes error response (its ``Status`` body, if any)."""
    try:
        body: JSON = json.loads(data)
    except ValueError:
        body = {}
    message = str(body.get("message") or data[:300].decode(errors="replace") or status)
    causes = (body.get("details") or {}).get("causes") or []
    field = next((c.get("field") for c in causes if c.get("field")), None)
    if status == 404:
        return NotFoundError(f"{what} not found")
    if status == 409:
        return ConflictError(message)
    if status == 403 and "because it is being terminated" in message:
        return NamespaceTerminatingError(message)
    if status == 403:
        return ForbiddenError(message)
    if status == 422:
        return InvalidInputError(message, field=field)
    if status in (429, 503, 504):
        return KubernetesUnavailableError(
            f"the Kubernetes API server is busy ({status}): {message}",
            retry_after=_retry_after_seconds(headers, default=retry_after),
        )
    if 400 <= status < 500:
        return BadRequestError(message, field=field)
    return UpstreamError(f"the Kubernetes API server failed ({status}): {message}")


def _is_quota_conflict(response: Any, path: str) -> bool:
    """Whether a 409 is quota admission's conflict on a ResourceQuota, not about the object sent.

    Its Status names the ResourceQuota (``details.kind``); a write to a ResourceQuota itself is
    excluded, where the same answer can be a real conflict on the object the caller sent.
    """
    if response.status != 409 or "/resourcequotas" in path:
        return False
    try:
        details = json.loads(response.read()).get("details") or {}
    except (ValueError, AttributeError):
        return False
    return bool(details.get("kind") == "resourcequotas")


def _retry_after_seconds(headers: Mapping[str, str], *, default: int) -> int:
    """The response's Retry-After in whole seconds (the API server sends seconds, not dates)."""
    header = headers.get("Retry-After", "").strip()
    return int(header) if header.isdigit() else default
