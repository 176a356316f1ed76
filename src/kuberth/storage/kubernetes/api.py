"""Raw JSON requests to the Kubernetes API, as Kuberth or as an impersonated tenant.

The generated client's models are skipped on purpose: responses stay plain JSON (no conversion into
model objects on every call), and each call can carry its own impersonation headers over the one
shared connection pool. An error response is read here, once, into the Kubernetes error its Status's
reason names (:mod:`kuberth.storage.kubernetes.errors`), with the kind, name and Kubernetes' own
message.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import json
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import pydantic_core
import urllib3
from kubernetes import client
from prometheus_client import Counter, Histogram

from kuberth.exceptions import KubernetesUnavailableError, KuberthError
from kuberth.storage.kubernetes.errors import Status, from_status

log = logging.getLogger(__name__)

JSON = dict[str, Any]

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "kuberth"
#: Asks list requests for metadata only (PartialObjectMetadataList): a fraction of the bytes.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
#: What a text body (a pod's log) is asked for with.
TEXT = "text/plain, */*"
JSON_TYPE = "application/json"

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


@functools.cache
def _answered(verb: str, code: str) -> Counter:
    """The series of a verb and code, found once: ``labels`` costs five times the increment."""
    return REQUESTS.labels(verb=verb, code=code)


@functools.cache
def _latency(verb: str) -> Histogram:
    return LATENCY.labels(verb=verb)


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


class _Response(Protocol):
    """What the retry policy and the error translation read of a response, on either path."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def read(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Answer:
    """A response on the event loop, read whole (what the synchronous path's response offers)."""

    status: int
    headers: Mapping[str, str]
    data: bytes

    def read(self) -> bytes:
        return self.data


class _Patience:
    """Whether to send a request again after a refusal the caller did not cause, within a budget.

    Two refusals happen before anything is stored, so sending any verb again is safe: API
    Priority and Fairness' 429 (waited out as its Retry-After asks), and quota admission's 409 on
    the namespace's ResourceQuota (it lost a race updating the quota's usage with a concurrent
    write and ran out of its own retries). The last refusal is passed on when waiting longer would
    exceed the budget; the caller translates it (a 503 carrying Retry-After, or the honest 409).
    One per request, for both the synchronous and the event loop's path: only how they wait
    differs.
    """

    __slots__ = ("_api", "_attempt", "_deadline", "_method", "_path")

    def __init__(self, api: KubernetesApi, method: str, path: str) -> None:
        self._api = api
        self._method = method
        self._path = path
        self._deadline = time.monotonic() + api.throttle_budget
        self._attempt = 0

    def wait(self, response: _Response) -> float | None:
        """Seconds to wait before sending again, or None to pass ``response`` on."""
        growth: float = 2**self._attempt
        if response.status == 429:
            # At least the server's Retry-After; growing, so a missing or zero one can't spin.
            wait = max(_retry_after_seconds(response.headers, default=0), 0.25 * growth)
            counter, why = THROTTLED, "throttled"
        elif _is_quota_conflict(response, self._path):
            wait, counter, why = 0.05 * growth, QUOTA_CONFLICTS, "quota admission refused"
        else:
            return None
        if time.monotonic() + wait > self._deadline:
            return None
        self._attempt += 1
        if counter is THROTTLED:
            self._api.throttled_retries += 1
        counter.inc()
        log.info("the API server %s %s %s; retrying in %ss", why, self._method, self._path, wait)
        return wait


class KubernetesApi:
    """The one place Kuberth sends HTTP requests to the API server.

    Each request has a synchronous form (over the generated client's urllib3 pool, for threads)
    and one for the event loop (``a``-prefixed, over an aiohttp session), with the same contract:
    the same headers, retries, metrics and errors.
    """

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
        #: One session per event loop, made there on first use: a session (its connections)
        #: belongs to the loop it was made in. Forgotten with its loop.
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()
        self._tls: ssl.SSLContext | None = None
        #: A whole request, as the synchronous path's; a stream only bounds its connecting.
        self._request_timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, connect=timeout)

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
            KubernetesError: Kubernetes refused the request (4xx), with its message: the class
                of its Status's reason (KubernetesNotFoundError, KubernetesConflictError, ...),
                which is also the matching domain error (NotFoundError, ConflictError, ...).
            KubernetesUnavailableError: unreachable, timed out, still throttled (429) after
                waiting as long as ``throttle_budget`` allows, or 503.
            UpstreamError: any other failure on the API server's side.
        """
        response = self._send_patiently(
            method, path, query, body, content_type, identity, self.timeout, accept
        )
        return _decoded(self._body(response, what or path))

    async def arequest(
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
        """:meth:`request` on the event loop: no thread is held while the API server answers.

        Raises:
            The same errors as :meth:`request`.
        """
        response = await self._asend_patiently(
            method, path, query, body, content_type, identity, accept
        )
        return _decoded(self._body(response, what or path))

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
            "GET", path, query, None, None, identity, self.timeout, TEXT
        )
        return bytes(self._body(response, what or path)).decode("utf-8", errors="replace")

    async def arequest_text(
        self,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        identity: Identity | None = None,
        what: str = "",
    ) -> str:
        """:meth:`request_text` on the event loop.

        Raises:
            The same errors as :meth:`request`.
        """
        response = await self._asend_patiently("GET", path, query, None, None, identity, TEXT)
        return self._body(response, what or path).decode("utf-8", errors="replace")

    def _body(self, response: _Response, what: str) -> bytes:
        """The response's body; a refusal or failure as its typed error."""
        data = response.read()
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
        on the event loop's session, so a follow holds no thread. Leaving the context closes the
        upstream response, whatever ended it (the client went away, a cancel). Only connecting is
        bounded by the request timeout: a quiet log may send nothing for long, so the caller
        bounds the whole stream.

        Raises:
            The same errors as :meth:`request`, for the response's status.
        """
        async with self._stream(path, query, identity, what, TEXT) as response:
            yield _lines(response)

    @contextlib.asynccontextmanager
    async def _stream(
        self,
        path: str,
        query: Mapping[str, str | int | bool],
        identity: Identity | None,
        what: str,
        accept: str,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streamed GET's response, its status checked; closed when the context is left."""
        session = self._session()
        headers = self._credentialed_headers(accept, None, None, identity)
        self.requests_sent += 1
        started = time.perf_counter()
        verb = _verb("STREAM", query)  # a watch counts as one, however it is sent
        try:
            async with session.get(
                self.server_url + path,
                params=_params(query),
                headers=headers,
                timeout=self._stream_timeout,
            ) as response:
                _latency(verb).observe(time.perf_counter() - started)
                _answered(verb, str(response.status)).inc()
                if response.status >= 400:
                    raise translate_error(
                        response.status,
                        await response.read(),
                        response.headers,
                        what=what or path,
                        retry_after=self.retry_after,
                    )
                yield response
        # Only aiohttp's own failures (its connect timeout among them): a TimeoutError of the
        # caller's, bounding the stream, is the caller's to see.
        except aiohttp.ClientError as error:
            _answered(verb, "unreachable").inc()
            raise KubernetesUnavailableError(
                f"the stream of {what or path} failed ({type(error).__name__})",
                retry_after=self.retry_after,
            ) from error

    @contextlib.asynccontextmanager
    async def awatch(
        self,
        path: str,
        *,
        query: Mapping[str, str | int | bool],
        timeout: float,
        identity: Identity | None = None,
        what: str = "",
    ) -> AsyncIterator[AsyncIterator[JSON]]:
        """:meth:`watch` on the event loop: its events (``{"type", "object"}``) as they come,
        until the server ends the watch after ``timeout`` (the caller bounds it too: a dead
        connection sends nothing). Leaving the context closes the watch.

        Raises:
            The same errors as :meth:`request`, for the response's status;
            KubernetesUnavailableError: the watch was cut off.
        """
        params = {**query, "watch": "true", "timeoutSeconds": max(1, int(timeout + 0.999))}
        async with self._stream(path, params, identity, what, JSON_TYPE) as response:
            yield self._events(response, what or path)

    async def _events(self, response: aiohttp.ClientResponse, what: str) -> AsyncIterator[JSON]:
        """A watch's events, one JSON document a line (split on bytes: a line separator other
        than "\n" may stand unescaped inside a string)."""
        buffer = b""
        try:
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _decoded(line)
        except aiohttp.ClientError as error:
            raise KubernetesUnavailableError(
                f"the watch on {what} was cut off ({type(error).__name__})",
                retry_after=self.retry_after,
            ) from error

    def _session(self) -> aiohttp.ClientSession:
        """The running event loop's session, made on first use."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = self._sessions[loop] = aiohttp.ClientSession(
                # Connections are kept for aiohttp's 15 s, less than the API server keeps an
                # idle one, so a kept connection is not closed under a request.
                connector=aiohttp.TCPConnector(ssl=self._ssl_context()),
                # The synchronous client's User-Agent: the field manager of its writes, too.
                headers=self._api.default_headers,
                cookie_jar=aiohttp.DummyCookieJar(),  # the API server sets none
            )
        return session

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS the synchronous client has: the kubeconfig's CA and client certificate."""
        if self._tls is None:
            configuration = self._api.configuration
            context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
            if not configuration.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
            self._tls = context
        return self._tls

    async def aclose(self) -> None:
        """Close the running event loop's session (its connections), if one was made."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    async def acheck_ready(self) -> None:
        """Ask the API server's ``/readyz`` (one request, on the event loop).

        Raises:
            KubernetesUnavailableError: unreachable, too slow, or not ready.
        """
        answer = await self._asend("GET", "/readyz", None, None, None, None, None)
        if answer.status != 200:
            raise KubernetesUnavailableError(
                f"the Kubernetes API server is not ready ({answer.status})",
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
                        yield _decoded(line)
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
        """Send, sending again after refusals the caller did not cause (see :class:`_Patience`)."""
        patience = _Patience(self, method, path)
        while True:
            response = self._send(
                method, path, query, body, content_type, identity, timeout, accept
            )
            wait = patience.wait(response)
            if wait is None:
                return response
            response.read()  # frees the connection for the next attempt
            time.sleep(wait)

    async def _asend_patiently(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int | bool] | None,
        body: JSON | None,
        content_type: str | None,
        identity: Identity | None,
        accept: str | None,
    ) -> _Answer:
        """:meth:`_send_patiently` on the event loop."""
        patience = _Patience(self, method, path)
        while True:
            response = await self._asend(method, path, query, body, content_type, identity, accept)
            wait = patience.wait(response)
            if wait is None:
                return response
            await asyncio.sleep(wait)

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
        method, url, headers, serialized, _ = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=_params(query),
            header_params=_headers(accept, body, content_type, identity),
            body=body,
            auth_settings=["BearerToken"],
        )
        verb = _verb(method, query)
        started = time.perf_counter()
        try:
            response = self._api.call_api(
                method, url, header_params=headers, body=serialized, _request_timeout=timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise self._unreachable(verb, type(error).__name__) from error
        except client.ApiException as error:  # TLS failures surface as status 0
            raise self._unreachable(verb, error.reason) from error
        _latency(verb).observe(time.perf_counter() - started)
        _answered(verb, str(response.status)).inc()
        return response

    async def _asend(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int | bool] | None,
        body: JSON | None,
        content_type: str | None,
        identity: Identity | None,
        accept: str | None,
    ) -> _Answer:
        """:meth:`_send` on the event loop: one request, its body read whole."""
        session = self._session()
        self.requests_sent += 1
        headers = self._credentialed_headers(accept, body, content_type, identity)
        verb = _verb(method, query)
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                self.server_url + path,
                params=_params(query),
                data=None if body is None else json.dumps(body).encode(),
                headers=headers,
                timeout=self._request_timeout,
            ) as response:
                _latency(verb).observe(time.perf_counter() - started)
                answer = _Answer(response.status, response.headers, await response.read())
        except (TimeoutError, aiohttp.ClientError) as error:
            raise self._unreachable(verb, type(error).__name__) from error
        _answered(verb, str(answer.status)).inc()
        return answer

    def _credentialed_headers(
        self,
        accept: str | None,
        body: JSON | None,
        content_type: str | None,
        identity: Identity | None,
    ) -> dict[str, str]:
        """:func:`_headers` with the credentials, for the event loop's requests (the generated
        client adds them to the synchronous ones). Evaluated per request: a refreshed token."""
        headers = _headers(accept, body, content_type, identity)
        for auth in self._api.configuration.auth_settings().values():
            headers[auth["key"]] = str(auth["value"])
        return headers

    def _unreachable(self, verb: str, why: object) -> KubernetesUnavailableError:
        """A request that got no answer, counted as such."""
        _answered(verb, "unreachable").inc()
        return KubernetesUnavailableError(
            f"the Kubernetes API server is unreachable ({why})", retry_after=self.retry_after
        )


def _headers(
    accept: str | None, body: JSON | None, content_type: str | None, identity: Identity | None
) -> dict[str, str]:
    """A request's own headers: what it accepts, what it sends, whom it acts as."""
    headers = {"Accept": accept or "application/json, */*"}
    if body is not None:
        headers["Content-Type"] = content_type or JSON_TYPE
    if identity is not None:
        headers.update(identity.headers())
    return headers


def _params(query: Mapping[str, str | int | bool] | None) -> list[tuple[str, str]]:
    """A query as Kubernetes spells it: booleans in lower case."""
    return [
        (k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (query or {}).items()
    ]


def _verb(method: str, query: Mapping[str, str | int | bool] | None) -> str:
    """The ``verb`` label of a request's metrics."""
    return "WATCH" if (query or {}).get("watch") == "true" else method


def _decoded(data: bytes) -> JSON:
    """A JSON body, decoded by pydantic's Rust parser (already a dependency): under half of
    ``json.loads``' time on a Deployment (7 against 16 µs), its repeated keys cached."""
    decoded: JSON = pydantic_core.from_json(data) if data else {}
    return decoded


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """A text body's lines as they come, without their endings; as ``str.splitlines`` splits
    (and as httpx's ``aiter_lines`` did), whatever the chunks, however long a line."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in response.content.iter_any():
        lines = (pending + decoder.decode(chunk)).splitlines(keepends=True)
        # The last piece waits for more unless it ends a line; a "\r" may yet be half a "\r\n".
        pending = lines.pop() if lines and _unended(lines[-1]) else ""
        for line in lines:
            yield line.splitlines()[0]
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.splitlines()[0]


def _unended(piece: str) -> bool:
    return piece.endswith("\r") or piece.splitlines()[0] == piece


def translate_error(
    status: int, data: bytes, headers: Mapping[str, str], *, what: str, retry_after: int
) -> KuberthError:
    """The error of a Kubernetes error response (its ``Status`` body, if any): see
    :func:`kuberth.storage.kubernetes.errors.from_status`."""
    return from_status(
        Status.parse(status, data),
        what=what,
        retry_after=_retry_after_seconds(headers, default=retry_after),
    )


def _is_quota_conflict(response: _Response, path: str) -> bool:
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
