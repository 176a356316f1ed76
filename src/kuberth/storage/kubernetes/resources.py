"""One storage class per Kubernetes kind, all with the same verbs.

``read`` returns None on 404; ``delete`` treats 404 as done; every call has a timeout (the
:class:`KubernetesApi` default) and may act as an impersonated tenant. The verbs a request serves
(``create``, ``read``, ``list``, ``replace``, ``patch``, ``delete``) have an event loop twin
(``acreate``, ...) with the same arguments and answers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TypeVar

from kuberth.exceptions import BadRequestError, InvalidInputError, KuberthError, NotFoundError
from kuberth.storage.kubernetes.api import (
    APPLY_PATCH,
    FIELD_MANAGER,
    JSON,
    MERGE_PATCH,
    METADATA_ONLY,
    Identity,
    KubernetesApi,
)

#: How the API server says a body's field has the wrong JSON type ("3" for an integer): the Go
#: struct's name, then the field's path.
_UNDECODABLE_FIELD = re.compile(r"into Go struct field [A-Za-z0-9_]+\.([A-Za-z0-9_.]+) of type")

#: What a verb answers in place of a 404: None (already absent), or nothing (it raises).
R = TypeVar("R")


def undecodable_field_error(error: KuberthError) -> KuberthError:
    """A write Kubernetes could not decode because of one field's type, as a 422 naming it.

    The API server names such a field only in its message: a body is a 400 without a field, a
    merge patch a 422 at field ``patch``. To the client either is a bad value in a well-formed
    request, like any other 422.
    """
    match = _UNDECODABLE_FIELD.search(error.message)
    undecodable = isinstance(error, BadRequestError) and not error.field
    patched = isinstance(error, InvalidInputError) and error.field == "patch"
    if match is None or not (undecodable or patched):
        return error
    return InvalidInputError(error.message, field=match.group(1))


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API."""

    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:  # None: across all namespaces (list/watch)
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


@dataclass(frozen=True, slots=True)
class _Call(Generic[R]):
    """One verb's request, described once: the synchronous and the event loop's verb only send it.

    ``on_404`` is what a 404 comes to (``_gone``: None, the verb's "already absent"; ``_raise``:
    the NotFoundError). A ``write`` that Kubernetes could not decode names the field (see
    :func:`undecodable_field_error`).
    """

    method: str
    path: str
    what: str
    on_404: Callable[[NotFoundError], R]
    query: Mapping[str, str | int | bool] | None = None
    body: JSON | None = None
    content_type: str | None = None
    accept: str | None = None
    identity: Identity | None = None
    write: bool = False

    def refused(self, error: KuberthError) -> R:
        """The verb's answer to a refusal: its 404's meaning, or the error (re-raised)."""
        if isinstance(error, NotFoundError):
            return self.on_404(error)
        translated = undecodable_field_error(error) if self.write else error
        if translated is error:
            raise error
        raise translated from error


def _gone(_error: NotFoundError) -> None:
    """A 404 that means the verb's "already absent": None."""


def _raise(error: NotFoundError) -> NoReturn:
    """A 404 that is the caller's to see."""
    raise error


def _next_page(page: JSON, query: dict[str, str | int]) -> bool:
    """Point ``query`` at the page after ``page``; False when it was the last."""
    token = (page.get("metadata") or {}).get("continue")
    if not token:
        return False
    query["continue"] = token
    return True


class ResourceStorage:
    """create / read / list / apply / patch / delete for one kind."""

    kind: Kind

    def __init__(self, api: KubernetesApi) -> None:
        self._api = api

    def _what(self, name: str | None, namespace: str | None) -> str:
        where = f" in {namespace}" if namespace else ""
        return f"{self.kind.kind.lower()} {name}{where}" if name else f"{self.kind.plural}{where}"

    def _send(self, call: _Call[R]) -> JSON | R:
        """Send a verb's request (the synchronous verbs)."""
        try:
            return self._api.request(
                call.method,
                call.path,
                query=call.query,
                body=call.body,
                content_type=call.content_type,
                accept=call.accept,
                identity=call.identity,
                what=call.what,
            )
        except KuberthError as error:
            return call.refused(error)

    async def _asend(self, call: _Call[R]) -> JSON | R:
        """Send a verb's request on the event loop (the ``a``-prefixed verbs)."""
        try:
            return await self._api.arequest(
                call.method,
                call.path,
                query=call.query,
                body=call.body,
                content_type=call.content_type,
                accept=call.accept,
                identity=call.identity,
                what=call.what,
            )
        except KuberthError as error:
            return call.refused(error)

    def create(
        self, body: JSON, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON:
        return self._send(self._create(body, namespace, identity))

    async def acreate(
        self, body: JSON, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON:
        return await self._asend(self._create(body, namespace, identity))

    def _create(
        self, body: JSON, namespace: str | None, identity: Identity | None
    ) -> _Call[NoReturn]:
        name = body.get("metadata", {}).get("name")
        return _Call(
            "POST",
            self.kind.path(namespace),
            self._what(name, namespace),
            _raise,
            body=body,
            identity=identity,
            write=True,
        )

    def read(
        self, name: str, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON | None:
        return self._send(self._read(name, namespace, identity))

    async def aread(
        self, name: str, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON | None:
        return await self._asend(self._read(name, namespace, identity))

    def _read(self, name: str, namespace: str | None, identity: Identity | None) -> _Call[None]:
        path = self.kind.path(namespace, name)
        return _Call("GET", path, self._what(name, namespace), _gone, identity=identity)

    def list(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        identity: Identity | None = None,
    ) -> JSON:
        return self._send(self._list(namespace, label_selector, field_selector, identity))

    async def alist(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        identity: Identity | None = None,
    ) -> JSON:
        return await self._asend(self._list(namespace, label_selector, field_selector, identity))

    def _list(
        self,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        identity: Identity | None,
    ) -> _Call[NoReturn]:
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        return _Call(
            "GET",
            self.kind.path(namespace),
            self._what(None, namespace),
            _raise,
            query=query,
            identity=identity,
        )

    async def alist_all(
        self, *, label_selector: str, page_size: int = 500, metadata_only: bool = False
    ) -> AsyncIterator[JSON]:
        """Every matching object in the cluster, a page at a time, so memory stays bounded at any
        number of tenants; ``metadata_only`` asks for just their metadata. On the event loop."""
        query: dict[str, str | int] = {"labelSelector": label_selector, "limit": page_size}
        while True:
            page = await self._asend(self._page(query, metadata_only))
            for item in page.get("items") or []:
                yield item
            if not _next_page(page, query):
                return

    def _page(self, query: Mapping[str, str | int], metadata_only: bool) -> _Call[NoReturn]:
        return _Call(
            "GET",
            self.kind.path(),
            self._what(None, None),
            _raise,
            query=dict(query),
            accept=METADATA_ONLY if metadata_only else None,
        )

    def watch(
        self,
        name: str,
        *,
        namespace: str | None = None,
        timeout: float,
        resource_version: str | None = None,
        identity: Identity | None = None,
    ) -> Iterator[JSON]:
        """Watch one object; events as the API server sends them, until ``timeout``."""
        query = {"fieldSelector": f"metadata.name={name}"}
        if resource_version:
            query["resourceVersion"] = resource_version
        return self._api.watch(
            self.kind.path(namespace),
            query=query,
            timeout=timeout,
            identity=identity,
            what=self._what(name, namespace),
        )

    def awatch(
        self,
        name: str,
        *,
        namespace: str | None = None,
        timeout: float,
        resource_version: str | None = None,
        identity: Identity | None = None,
        bookmarks: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[JSON]]:
        """:meth:`watch` on the event loop; leaving the context closes the watch. With
        ``bookmarks``, the API server also sends BOOKMARK events (an object with only its
        ``metadata.resourceVersion``): where to watch on from, when nothing changed."""
        query = {"fieldSelector": f"metadata.name={name}"}
        if resource_version:
            query["resourceVersion"] = resource_version
        if bookmarks:
            query["allowWatchBookmarks"] = "true"
        return self._api.awatch(
            self.kind.path(namespace),
            query=query,
            timeout=timeout,
            identity=identity,
            what=self._what(name, namespace),
        )

    def apply(
        self, manifest: JSON, *, identity: Identity | None = None, force: bool = True
    ) -> JSON:
        """Server-side apply under the ``kuberth`` field manager: creates or converges."""
        return self._send(self._apply(manifest, identity, force))

    async def aapply(
        self, manifest: JSON, *, identity: Identity | None = None, force: bool = True
    ) -> JSON:
        """:meth:`apply` on the event loop."""
        return await self._asend(self._apply(manifest, identity, force))

    def _apply(self, manifest: JSON, identity: Identity | None, force: bool) -> _Call[NoReturn]:
        metadata: dict[str, Any] = manifest["metadata"]
        namespace = metadata.get("namespace") if self.kind.namespaced else None
        return _Call(
            "PATCH",
            self.kind.path(namespace, metadata["name"]),
            self._what(metadata["name"], namespace),
            _raise,
            query={"fieldManager": FIELD_MANAGER, "force": force},
            body=manifest,
            content_type=APPLY_PATCH,
            identity=identity,
        )

    def replace(self, body: JSON, *, identity: Identity | None = None) -> JSON:
        """PUT; a ``metadata.resourceVersion`` in the body makes it conditional (409 if stale)."""
        return self._send(self._replace(body, identity))

    async def areplace(self, body: JSON, *, identity: Identity | None = None) -> JSON:
        """:meth:`replace` on the event loop."""
        return await self._asend(self._replace(body, identity))

    def _replace(self, body: JSON, identity: Identity | None) -> _Call[NoReturn]:
        metadata: dict[str, Any] = body["metadata"]
        namespace = metadata.get("namespace") if self.kind.namespaced else None
        return _Call(
            "PUT",
            self.kind.path(namespace, metadata["name"]),
            self._what(metadata["name"], namespace),
            _raise,
            body=body,
            identity=identity,
            write=True,
        )

    def patch(
        self,
        name: str,
        patch: JSON,
        *,
        namespace: str | None = None,
        identity: Identity | None = None,
        subresource: str | None = None,
    ) -> JSON:
        """JSON merge patch (of the object, or of a subresource such as ``scale``)."""
        return self._send(self._patch(name, patch, namespace, identity, subresource))

    async def apatch(
        self,
        name: str,
        patch: JSON,
        *,
        namespace: str | None = None,
        identity: Identity | None = None,
        subresource: str | None = None,
    ) -> JSON:
        """:meth:`patch` on the event loop."""
        return await self._asend(self._patch(name, patch, namespace, identity, subresource))

    def _patch(
        self,
        name: str,
        patch: JSON,
        namespace: str | None,
        identity: Identity | None,
        subresource: str | None,
    ) -> _Call[NoReturn]:
        path = self.kind.path(namespace, name)
        return _Call(
            "PATCH",
            f"{path}/{subresource}" if subresource else path,
            self._what(name, namespace),
            _raise,
            body=patch,
            content_type=MERGE_PATCH,
            identity=identity,
            write=True,
        )

    def delete(
        self, name: str, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON | None:
        """Delete; returns the object as the API server left it (None when it was already gone)."""
        return self._send(self._delete(name, namespace, identity))

    async def adelete(
        self, name: str, *, namespace: str | None = None, identity: Identity | None = None
    ) -> JSON | None:
        """:meth:`delete` on the event loop."""
        return await self._asend(self._delete(name, namespace, identity))

    def _delete(self, name: str, namespace: str | None, identity: Identity | None) -> _Call[None]:
        return _Call(
            "DELETE",
            self.kind.path(namespace, name),
            self._what(name, namespace),
            _gone,
            body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"},
            identity=identity,
        )


class ClusterRoleStorage(ResourceStorage):
    kind = Kind("ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False)


class ValidatingAdmissionPolicyStorage(ResourceStorage):
    kind = Kind(
        "ValidatingAdmissionPolicy",
        "admissionregistration.k8s.io/v1",
        "validatingadmissionpolicies",
        namespaced=False,
    )


class ValidatingAdmissionPolicyBindingStorage(ResourceStorage):
    kind = Kind(
        "ValidatingAdmissionPolicyBinding",
        "admissionregistration.k8s.io/v1",
        "validatingadmissionpolicybindings",
        namespaced=False,
    )


class ValidatingWebhookConfigurationStorage(ResourceStorage):
    kind = Kind(
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        namespaced=False,
    )


#: Storage class for each cluster-wide kind Kuberth keeps in place at start-up.
CLUSTER_STORAGE: dict[str, type[ResourceStorage]] = {
    cls.kind.kind: cls
    for cls in (
        ClusterRoleStorage,
        ValidatingAdmissionPolicyStorage,
        ValidatingAdmissionPolicyBindingStorage,
        ValidatingWebhookConfigurationStorage,
    )
}


class RoleBindingStorage(ResourceStorage):
    kind = Kind("RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings")


class ResourceQuotaStorage(ResourceStorage):
    kind = Kind("ResourceQuota", "v1", "resourcequotas")


class LimitRangeStorage(ResourceStorage):
    kind = Kind("LimitRange", "v1", "limitranges")


class NetworkPolicyStorage(ResourceStorage):
    kind = Kind("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies")


class ServiceAccountStorage(ResourceStorage):
    kind = Kind("ServiceAccount", "v1", "serviceaccounts")

    async def acreate_token(
        self,
        name: str,
        *,
        namespace: str,
        expiration_seconds: int,
        identity: Identity | None = None,
    ) -> JSON:
        """A TokenRequest: a short-lived token bound to this service account."""
        call = _Call(
            "POST",
            f"{self.kind.path(namespace, name)}/token",
            f"a token for service account {name} in {namespace}",
            _raise,
            body={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
            identity=identity,
        )
        return await self._asend(call)


class DeploymentStorage(ResourceStorage):
    kind = Kind("Deployment", "apps/v1", "deployments")


class ServiceStorage(ResourceStorage):
    kind = Kind("Service", "v1", "services")


class IngressStorage(ResourceStorage):
    kind = Kind("Ingress", "networking.k8s.io/v1", "ingresses")


class PodStorage(ResourceStorage):
    kind = Kind("Pod", "v1", "pods")

    async def read_log(
        self,
        name: str,
        *,
        namespace: str,
        query: Mapping[str, str | int | bool],
        identity: Identity | None = None,
    ) -> str:
        """One container's log (``query``: Kubernetes' own ``container``, ``tailLines``, ...),
        on the event loop."""
        return await self._api.arequest_text(
            f"{self.kind.path(namespace, name)}/log",
            query=query,
            identity=identity,
            what=self._what(name, namespace),
        )

    def follow_log(
        self,
        name: str,
        *,
        namespace: str,
        query: Mapping[str, str | int | bool],
        identity: Identity | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """One container's log, its lines as they come (``follow``), on the event loop; leaving
        the context closes the upstream stream."""
        return self._api.stream_lines(
            f"{self.kind.path(namespace, name)}/log",
            query={**query, "follow": True},
            identity=identity,
            what=self._what(name, namespace),
        )


class EventStorage(ResourceStorage):
    kind = Kind("Event", "v1", "events")


class EndpointSliceStorage(ResourceStorage):
    kind = Kind("EndpointSlice", "discovery.k8s.io/v1", "endpointslices")


#: Storage class for each kind the tenant baseline is made of.
BASELINE_STORAGE: dict[str, type[ResourceStorage]] = {
    cls.kind.kind: cls
    for cls in (RoleBindingStorage, ResourceQuotaStorage, LimitRangeStorage, NetworkPolicyStorage)
}
