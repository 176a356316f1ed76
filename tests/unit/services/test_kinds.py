"""The registry of kinds is complete, and it is the only place that tells kinds apart (issue 16).

Routes, pages, WorkloadService and AppService read each kind from the registry; a branch on a
kind's name elsewhere would be a second place to change when a kind changes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from kuberth.http import schemas
from kuberth.http.pages import templates
from kuberth.services.kinds import DEPLOYMENT, INGRESS, KINDS, SERVICE, WorkloadKind
from kuberth.services.policy import WorkloadPolicy
from kuberth.services.specs import AppUpdate
from kuberth.storage.kubernetes.resources import (
    DeploymentStorage,
    IngressStorage,
    ResourceStorage,
    ServiceStorage,
)

SRC = Path(__file__).resolve().parents[3] / "src" / "kuberth"

POLICY = WorkloadPolicy(
    apps_domain="apps.example",
    custom_domains={},
    ingress_classes=("nginx",),
    service_types=("ClusterIP",),
)

#: A filled-in "new" form of each kind, as the pages submit it.
FORMS = {
    "deployments": {"name": "web", "image": "nginx:1.27", "replicas": "2", "port": "8080"},
    "services": {"name": "web", "app": "web", "port": "80", "target_port": "8080"},
    "ingresses": {
        "name": "web",
        "host": "web-alice.apps.example",
        "service": "web",
        "port": "80",
        "path": "/",
    },
}


def test_three_kinds_in_the_order_pages_and_routes_show_them() -> None:
    assert list(KINDS) == ["deployments", "services", "ingresses"]
    assert [KINDS[p] for p in KINDS] == [DEPLOYMENT, SERVICE, INGRESS]


@pytest.mark.parametrize(
    ("plural", "kind", "api_version", "storage", "title", "related", "holds_hosts"),
    [
        (
            "deployments",
            "Deployment",
            "apps/v1",
            DeploymentStorage,
            "Deployments",
            {"pods", "events", "problems"},
            False,
        ),
        ("services", "Service", "v1", ServiceStorage, "Services", {"endpoints"}, False),
        (
            "ingresses",
            "Ingress",
            "networking.k8s.io/v1",
            IngressStorage,
            "Ingresses",
            set(),
            True,
        ),
    ],
)
def test_each_kind_knows_its_address_and_what_it_offers(
    plural: str,
    kind: str,
    api_version: str,
    storage: type[ResourceStorage],
    title: str,
    related: set[str],
    holds_hosts: bool,
) -> None:
    entry = KINDS[plural]
    assert (entry.plural, entry.kind, entry.api_version) == (plural, kind, api_version)
    assert entry.storage is storage
    assert entry.address == storage.kind
    assert entry.title == title
    assert entry.noun == kind.lower()
    assert entry.related == related
    assert entry.holds_hosts is holds_hosts
    assert entry.patched_in_kubernetes is (plural == "deployments")
    assert entry.runs_pods is (plural == "deployments")


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_each_kind_is_complete(kind: WorkloadKind[Any]) -> None:
    """A concise form, a response model per API route, a form, and a column on the list."""
    assert issubclass(kind.concise, BaseModel)
    assert issubclass(getattr(schemas, kind.kind), BaseModel)
    assert issubclass(getattr(schemas, f"{kind.kind}List"), BaseModel)
    fields = kind.form_fields()
    assert fields[0]["name"] == "name"
    assert fields[0]["required"] is True
    assert all(f["label"] for f in fields)
    assert set(kind.form_lists) <= set(kind.concise.model_fields)
    assert set(kind.form_lists.values()) <= {f["name"] for f in fields}
    column = getattr(templates.env.get_template("kinds.html").module, kind.list_column)
    assert callable(column)


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_a_submitted_form_builds_the_native_object_and_its_summary(
    kind: WorkloadKind[Any],
) -> None:
    body = kind.form_body(FORMS[kind.plural])
    manifest = kind.from_concise(body, namespace="alice", policy=POLICY)
    assert manifest["kind"] == kind.kind
    assert manifest["apiVersion"] == kind.api_version
    assert manifest["metadata"] == {**manifest["metadata"], "name": "web", "namespace": "alice"}
    summary = kind.summarize(manifest)
    assert summary["name"] == "web"
    assert summary["namespace"] == "alice"


def test_empty_inputs_are_left_out_of_the_body() -> None:
    assert DEPLOYMENT.form_body({"name": "web", "image": "x", "replicas": "", "port": ""}) == {
        "name": "web",
        "image": "x",
    }


def test_an_ingress_built_without_a_class_gets_the_first_allowed_one() -> None:
    body = INGRESS.form_body(FORMS["ingresses"])
    manifest = INGRESS.from_concise(body, namespace="alice", policy=POLICY)
    assert manifest["spec"]["ingressClassName"] == "nginx"


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_an_app_change_leaves_the_original_alone(kind: WorkloadKind[Any]) -> None:
    manifest = kind.from_concise(
        kind.form_body(FORMS[kind.plural]), namespace="alice", policy=POLICY
    )
    before = repr(manifest)
    change = AppUpdate(image="nginx:1.28", replicas=3, port=9090, host="new-alice.apps.example")
    changed = kind.app_changed(manifest, change)
    assert repr(manifest) == before
    assert changed != manifest


#: A branch on a kind's name: ``plural == ...``, or a plural or Kind name compared either way.
_NAMES = r"(deployments?|services?|ingress(es)?|Deployment|Service|Ingress)"
_BRANCH = re.compile(
    rf"""\bplural\s*[!=]=|[!=]=\s*["']{_NAMES}["']|["']{_NAMES}["']\s*[!=]="""
    r"""|isinstance\([^)]*(DeploymentSpec|ServiceSpec|IngressSpec)"""
)


def test_no_code_branches_on_a_kinds_name() -> None:
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*"))
        if path.suffix in (".py", ".html")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _BRANCH.search(line)
    ]
    assert found == []


def test_the_branch_pattern_finds_what_it_is_for() -> None:
    """The test above is only as good as its pattern."""
    for line in (
        'if plural == "deployments":',
        "{% if plural != 'ingresses' %}",
        'elif kind == "Service":',
        'if "ingresses" == plural:',
        "if isinstance(spec, IngressSpec):",
    ):
        assert _BRANCH.search(line), line
    assert not _BRANCH.search('if manifest["kind"] == "Namespace":')
