"""What a tenant could change in a namespace, as one comparable string (for isolation tests)."""

from __future__ import annotations

import json

from kubernetes import client


def snapshot(admin_api: client.ApiClient, namespace: str, *, system: bool = False) -> str:
    """What a tenant could change in a namespace (status and versions move on their own).

    In a system namespace the controllers keep adding service accounts and config maps of their
    own; there, the kinds Kuberth's routes write are compared.
    """
    api = client.ApiClient(admin_api.configuration)
    objects = []
    paths = [
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        f"/api/v1/namespaces/{namespace}/services",
        f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses",
    ]
    if not system:
        paths += [
            f"/api/v1/namespaces/{namespace}",
            f"/api/v1/namespaces/{namespace}/configmaps",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
            f"/api/v1/namespaces/{namespace}/resourcequotas",
        ]
    for path in paths:
        method, url, headers, _body, _ = api.param_serialize(
            method="GET", resource_path=path, auth_settings=["BearerToken"]
        )
        response = api.call_api(method, url, header_params=headers)
        body = response.read()
        # A 404's Status would compare equal before and after, and the snapshot say nothing.
        assert response.status == 200, f"GET {path}: {response.status} {body[:300]!r}"
        data = json.loads(body)
        for item in data.get("items", [data]):
            meta = item.get("metadata", {})
            objects.append(
                {
                    "kind": item.get("kind", data.get("kind")),
                    "name": meta.get("name"),
                    "labels": meta.get("labels"),
                    "annotations": meta.get("annotations"),
                    "generation": meta.get("generation"),
                    "deletion": meta.get("deletionTimestamp"),
                    "spec": item.get("spec"),
                    "data": item.get("data"),
                    "rbac": [item.get("roleRef"), item.get("subjects")],
                }
            )
    return json.dumps(
        sorted(objects, key=lambda o: (o["kind"] or "", o["name"] or "")), sort_keys=True
    )
