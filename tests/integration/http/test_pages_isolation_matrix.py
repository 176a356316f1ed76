"""The isolation matrix of the HTML pages, as test_isolation_matrix.py is the API's.

Every page route with a ``{namespace}`` x method (x each kind for ``{plural}``, and one kind the
pages must not reach) x (another tenant's namespace, kube-system, default, a missing namespace), by
a signed-in tenant whose forms carry a valid CSRF token of their own session: refused, with exactly
the answer a namespace that does not exist gets (also with bad values in the forms, which some
pages check first). The same forms without a CSRF token or with another session's are refused, on
the tenant's own namespace too; an API token (pages take none) and a signed-out visitor are sent to
sign in. Nothing in any of those namespaces changes. Then the very same requests on the tenant's
own namespace work, so the matrix is not refusing everything.

The pages without a namespace are covered too: /admin is refused to a tenant, /tokens lists only
one's own tokens and cannot revoke someone else's, every form needs its CSRF token.

The routes come from the app itself (every route whose endpoint lives in ``kuberth.http.pages``), so
a new page joins the matrix by itself; one with a path parameter the matrix cannot fill fails it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from kubernetes import client

from kuberth.http import pages
from kuberth.http.app import create_app
from kuberth.services.kinds import KINDS
from kuberth.settings import Settings
from tests.integration.conftest import Tenant
from tests.integration.snapshots import snapshot as workload_snapshot
from tests.timing import eventually

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
IMAGE = "nginx:1.27"
NOT_A_KIND = "secrets"  # {plural} must reach Deployments, Services and Ingresses, nothing else
SYSTEM = ("kube-system", "default")
API_GROUPS = {
    "deployments": ("/apis/apps/v1", "Deployment"),
    "services": ("/api/v1", "Service"),
    "ingresses": ("/apis/networking.k8s.io/v1", "Ingress"),
    "secrets": ("/api/v1", "Secret"),
}
# Where a page answers a namespace that is not the caller's with something else than a 404 (and
# still exactly as it answers a namespace that does not exist, which the matrix checks).
NOT_404 = {
    # The progress page of a deletion: "not found" means "gone", for any namespace.
    ("GET", "/namespaces/{namespace}/deleting"): 200,
    # Scaling fails into a flash message on the app page it redirects to (which is a 404).
    ("POST", "/namespaces/{namespace}/apps/{name}/scale"): 303,
}
# The same forms with bad values: some pages validate a form before they look for the namespace.
# Still refused, and still exactly as for a namespace that does not exist.
BAD_FORM = {
    ("POST", "/namespaces/{namespace}/apps"): 422,  # the form again, with its field errors
    ("POST", "/namespaces/{namespace}/apps/{name}"): 404,
    ("POST", "/namespaces/{namespace}/apps/{name}/scale"): 303,  # "Not scaled: replicas must..."
    ("POST", "/namespaces/{namespace}/{plural}"): 404,
    ("POST", "/namespaces/{namespace}/{plural}/{name}/edit"): 422,  # "not valid JSON"
}
# Today: 16 namespaced routes, 31 with the 4 values of {plural} (13 GETs, 18 POSTs). Aimed at 3
# foreign namespaces and the missing one (once per distinct set of names): 56 GET and 80 POST
# requests; the 11 forms with fields, with bad values, on bob's and the missing namespace: 22;
# signed out and with an API token: 62; without or with another session's CSRF token: 72; the
# owner: 13 GETs and 18 forms. The 8 routes without a namespace: 24, and 10 more checks.
# The matrix may grow; it must not shrink without this changing.
MIN_NAMESPACED_ROUTES = 16
MIN_CASES = 56 + 80 + 22 + 62 + 72 + 13 + 18 + 24 + 10


@dataclass(frozen=True)
class Page:
    """One page route, with the kind filled in for {plural}."""

    method: str
    template: str
    plural: str | None = None

    def __str__(self) -> str:
        template = self.template.replace("{plural}", self.plural or "{plural}")
        return f"{self.method} {template}"

    @property
    def kind(self) -> str:
        """What {name} names: the {plural} filled in, or the segment before {name} (apps)."""
        if self.plural:
            return self.plural
        segments = self.template.split("/")
        return segments[segments.index("{name}") - 1] if "{name}" in segments else ""

    @property
    def checks_kind_first(self) -> bool:
        """A kind the pages do not offer is a 404 before the form (and its CSRF) is read."""
        return self.plural is not None and self.plural not in KINDS

    def path(self, namespace: str, names: dict[str, str]) -> str:
        params = set(re.findall(r"\{(\w+)\}", self.template))
        unknown = params - {"namespace", "plural", "name"}
        assert not unknown, f"{self.template}: teach the matrix to fill {unknown}"
        return self.template.format(
            namespace=namespace, plural=self.plural, name=names.get(self.kind, "web")
        )


@dataclass(frozen=True)
class Answer:
    """A page's answer; for a redirect within the pages, also the page it leads to."""

    status: int
    location: str
    text: str
    then: int | None = None

    def normalized(self, *namespaces: str) -> Answer:
        """With each of these namespaces' names written as {namespace}."""
        location, text = self.location, self.text
        for namespace in namespaces:
            location = location.replace(namespace, "{namespace}")
            text = text.replace(namespace, "{namespace}")
        return Answer(self.status, location, text, self.then)


def page_routes(app: FastAPI) -> list[APIRoute]:
    """The app's routes served by kuberth.http.pages (included routers are walked into)."""
    found: list[APIRoute] = []
    area = f"{pages.__name__}."  # the package's modules, one per area

    def walk(routes: Iterable[object]) -> None:
        for route in routes:
            if isinstance(route, APIRoute) and route.endpoint.__module__.startswith(area):
                found.append(route)
            included = getattr(route, "original_router", None)
            if included is not None:
                walk(included.routes)

    walk(app.routes)
    return found


def _expand(routes: Iterable[APIRoute]) -> list[Page]:
    expanded = []
    for route in routes:
        plurals = [*KINDS, NOT_A_KIND] if "{plural}" in route.path else [None]
        expanded += [Page(m, route.path, p) for m in sorted(route.methods) for p in plurals]
    return expanded


def _get(admin_api: client.ApiClient, path: str) -> Any:
    """A raw GET as the cluster admin: the JSON, or None for a 404."""
    method, url, headers, _body, _ = admin_api.param_serialize(
        method="GET", resource_path=path, auth_settings=["BearerToken"]
    )
    response = admin_api.call_api(method, url, header_params=headers)
    if response.status == 404:
        return None
    assert response.status == 200, response.read()
    return json.loads(response.read())


def _state(admin_api: client.ApiClient, namespace: str, *, system: bool) -> str:
    """The API matrix's snapshot, plus the kinds it leaves out (Secrets, the tenant baseline)."""
    paths = [f"/api/v1/namespaces/{namespace}/secrets"]
    if system:
        paths.append(f"/api/v1/namespaces/{namespace}")
    else:
        paths += [
            f"/api/v1/namespaces/{namespace}/limitranges",
            f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        ]
    extra = []
    for path in paths:
        data = _get(admin_api, path)
        for item in data.get("items", [data]):
            meta = item["metadata"]
            extra.append(
                [
                    path,
                    meta["name"],
                    meta.get("labels"),
                    meta.get("annotations"),
                    meta.get("deletionTimestamp"),
                    item.get("spec"),
                    item.get("data"),
                    item.get("rules"),
                ]
            )
    extra.sort(key=lambda o: (o[0], o[1]))
    return workload_snapshot(admin_api, namespace, system=system) + json.dumps(
        extra, sort_keys=True
    )


def _difference(before: str, after: str) -> str:
    """Where two snapshots part, with some context."""
    at = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), 0)
    return f"...{before[max(0, at - 200) : at + 100]}... became ...{after[at : at + 100]}..."


def _controllers_done(admin_api: client.ApiClient, namespace: str, *, system: bool) -> bool:
    """Whether the controllers are done with what the snapshot compares.

    They write two things into it on their own: a Deployment's revision annotation (with its
    observed generation), and, in a new namespace, the `default` ServiceAccount and the
    `kube-root-ca.crt` ConfigMap.
    """
    deployments = _get(admin_api, f"/apis/apps/v1/namespaces/{namespace}/deployments")
    for deployment in deployments["items"]:
        meta, status = deployment["metadata"], deployment.get("status", {})
        if "deployment.kubernetes.io/revision" not in meta.get("annotations", {}):
            return False
        if status.get("observedGeneration") != meta["generation"]:
            return False
    if system:
        return True
    return (
        _get(admin_api, f"/api/v1/namespaces/{namespace}/serviceaccounts/default") is not None
        and _get(admin_api, f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt")
        is not None
    )


def _settled(admin_api: client.ApiClient, namespace: str, *, system: bool) -> str:
    """A snapshot once the controllers are done with the objects (e.g. a revision annotation)."""
    eventually(
        lambda: _controllers_done(admin_api, namespace, system=system),
        within=60,
        what=f"the controllers are done with {namespace}",
    )
    return _state(admin_api, namespace, system=system)


def _names(admin_api: client.ApiClient, namespace: str) -> dict[str, str]:
    """Real objects to aim at: `web` for the app, and an object of each kind when there is one."""
    names = {"apps": "web"}
    for plural, (group, _kind) in API_GROUPS.items():
        data = _get(admin_api, f"{group}/namespaces/{namespace}/{plural}")
        found = sorted(item["metadata"]["name"] for item in (data or {}).get("items", []))
        names[plural] = "worker" if "worker" in found else (found[0] if found else "web")
    return names


def _furnish(tenant: Tenant, apps_domain: str) -> None:
    """An app (Deployment, Service and Ingress `web`) and one more of each kind (`worker`)."""
    ns = tenant.namespace
    bodies = {
        "apps": {"name": "web", "image": IMAGE},
        "deployments": {"name": "worker", "image": IMAGE},
        "services": {"name": "worker", "app": "worker", "ports": [{"port": 80}]},
        "ingresses": {
            "name": "worker",
            "host": f"worker-{ns}.{apps_domain}",
            "paths": [{"service": "worker", "port": 80}],
        },
    }
    for plural, body in bodies.items():
        created = tenant.http.post(f"/api/v1/namespaces/{ns}/{plural}", json=body)
        assert created.status_code == 201, created.text


def _csrf(http: httpx.Client) -> str:
    page = http.get("/dashboard")
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match, "no CSRF token on the dashboard"
    return match.group(1)


def _manifest(admin_api: client.ApiClient, plural: str, namespace: str, name: str) -> str:
    """The object as its edit page shows it, with a label added (a minimal one if it is absent)."""
    group, kind = API_GROUPS.get(plural, ("/api/v1", plural))
    live = _get(admin_api, f"{group}/namespaces/{namespace}/{plural}/{name}")
    obj = live or {"apiVersion": group.split("/", 2)[-1], "kind": kind, "metadata": {"name": name}}
    obj["metadata"].pop("managedFields", None)
    obj["metadata"]["labels"] = {**obj["metadata"].get("labels", {}), "intruder": "yes"}
    return json.dumps(obj)


def _form(
    page: Page, namespace: str, names: dict[str, str], admin_api: client.ApiClient, domain: str
) -> dict[str, str]:
    """A form that does what the page does when the namespace is the caller's (no CSRF yet)."""
    template, plural = page.template, page.plural or ""
    if template.endswith("/edit"):
        return {"manifest": _manifest(admin_api, plural, namespace, names.get(plural, "web"))}
    if template.endswith("/scale"):
        return {"replicas": "3"}
    if template == "/namespaces/{namespace}/apps":
        return {"name": "intruder-app", "image": IMAGE, "port": "8080", "env": "MODE=intruder"}
    if template == "/namespaces/{namespace}/apps/{name}":
        return {"image": "nginx:1.28", "replicas": "2", "env": "MODE=intruder"}
    if template == "/namespaces/{namespace}/{plural}":
        name = f"intruder-{plural}"
        return {
            "deployments": {"name": name, "image": IMAGE, "replicas": "1"},
            "services": {"name": name, "app": "web", "port": "80"},
            "ingresses": {
                "name": name,
                "host": f"{name}-{namespace}.{domain}",
                "service": "web",
                "port": "80",
                "path": "/",
            },
        }.get(plural, {"name": name, "data": "intruder"})
    return {}


def _ask(
    http: httpx.Client,
    method: str,
    path: str,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    response = http.request(method, path, data=form or None, headers=headers)
    location = response.headers.get("location", "")
    answer = Answer(response.status_code, location, response.text)
    if response.is_redirect and location.startswith("/") and not location.startswith("/auth/"):
        # Follow a redirect within the pages once: its flash message is part of the answer (and
        # must not leak into the next one).
        then = http.get(location)
        return Answer(answer.status, location, then.text, then.status_code)
    return answer


def test_pages_isolation_matrix(
    tenants: Callable[..., Tenant],
    admin_api: client.ApiClient,
    kuberth_settings: Callable[..., Settings],
    capsys: Any,
) -> None:
    started = time.monotonic()
    settings = kuberth_settings()
    domain = settings.apps_domain
    routes = page_routes(create_app(settings))
    namespaced = _expand(r for r in routes if "{namespace}" in r.path)
    assert len({(p.method, p.template) for p in namespaced}) >= MIN_NAMESPACED_ROUTES

    alice, bob = tenants(), tenants()  # alice attacks bob
    for tenant in (alice, bob):
        _furnish(tenant, domain)
    bob_token = bob.http.post("/api/v1/tokens", json={"name": f"victim-{secrets.token_hex(3)}"})
    alice_token = alice.http.post("/api/v1/tokens", json={"name": f"own-{secrets.token_hex(3)}"})
    assert bob_token.status_code == alice_token.status_code == 201
    bob_bearer = {"Authorization": f"Bearer {bob_token.json()['token']}"}
    alice_bearer = {"Authorization": f"Bearer {alice_token.json()['token']}"}
    alice_csrf, bob_csrf = _csrf(alice.http), _csrf(bob.http)
    assert alice_csrf != bob_csrf
    anonymous = httpx.Client(base_url=str(alice.http.base_url), timeout=60)
    missing = f"missing-{secrets.token_hex(4)}"
    foreign = (bob.namespace, *SYSTEM)
    names = {ns: _names(admin_api, ns) for ns in (alice.namespace, *foreign)}
    assert names[bob.namespace] == {"apps": "web", **dict.fromkeys(API_GROUPS, "worker")} | {
        NOT_A_KIND: "web"
    }
    assert names["default"]["services"] == "kubernetes"

    watched = {alice.namespace: False, bob.namespace: False} | dict.fromkeys(SYSTEM, True)
    before = {ns: _settled(admin_api, ns, system=system) for ns, system in watched.items()}
    audit_url = f"/api/v1/audit?namespace={bob.namespace}"
    audit = bob.http.get(audit_url)
    assert audit.status_code == 200, audit.text
    audit_before = audit.json()
    assert audit_before["items"], "bob's furnishing is not in his audit log"

    cases = 0
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            failures.append(what)

    def expect(what: str, answer: Answer, status: int, location: str | None = None) -> None:
        nonlocal cases
        cases += 1
        if answer.status != status or (location is not None and answer.location != location):
            failures.append(f"{what}: {answer.status} {answer.location} (expected {status})")
        elif answer.status >= 500 or (answer.then or 0) >= 500:
            failures.append(f"{what}: a server error")

    def to_sign_in(path: str) -> str:
        return f"/auth/github/login?next={path}"

    # -- the namespaced pages: refused everywhere but in one's own namespace ----------------------
    for page in namespaced:
        refused = NOT_404.get((page.method, page.template), 404)
        variants: list[tuple[str, Iterable[str], int]] = [("", foreign, refused)]
        if page.method == "POST" and _form(page, missing, names[bob.namespace], admin_api, domain):
            bad = 404 if page.checks_kind_first else BAD_FORM.get((page.method, page.template), 404)
            variants.append(("bad form: ", [bob.namespace], bad))
        for variant, targets, expected in variants:
            seen: dict[str, Answer] = {}
            for target in targets:
                # The same request on a namespace that does not exist, with the target's names.
                for ns in (target, missing):
                    path = page.path(ns, names[target])
                    if path not in seen:
                        form = _form(page, ns, names[target], admin_api, domain)
                        if variant:
                            form = dict.fromkeys(form, "Bad Name!")
                        if page.method == "POST":
                            form["csrf"] = alice_csrf
                        seen[path] = _ask(alice.http, page.method, path, form)
                        expect(f"{variant}{page} on {ns}", seen[path], expected)
                answer = seen[page.path(target, names[target])].normalized(target, missing)
                reference = seen[page.path(missing, names[target])].normalized(target, missing)
                if answer != reference:
                    failures.append(
                        f"{variant}{page} on {target}: differs from a missing namespace's answer:"
                        f"\n  {answer}\n  {reference}"
                    )
        path = page.path(bob.namespace, names[bob.namespace])
        csrf_only = {"csrf": alice_csrf} if page.method == "POST" else None
        answer = _ask(anonymous, page.method, path, csrf_only)
        expect(f"signed out: {page}", answer, 303, to_sign_in(path))
        answer = _ask(anonymous, page.method, path, csrf_only, headers=alice_bearer)
        expect(f"API token: {page}", answer, 303, to_sign_in(path))
        if page.method == "GET":
            path = page.path(alice.namespace, names[alice.namespace])
            answer = _ask(alice.http, "GET", path)
            expect(f"own: {page}", answer, 404 if page.checks_kind_first else 200)
            continue
        bad_form = 404 if page.checks_kind_first else 403
        for ns in (alice.namespace, bob.namespace):
            for label, csrf in (("no CSRF", None), ("another session's CSRF", bob_csrf)):
                path = page.path(ns, names[ns])
                form = _form(page, ns, names[ns], admin_api, domain)
                if csrf:
                    form["csrf"] = csrf
                expect(f"{label}: {page} on {ns}", _ask(alice.http, "POST", path, form), bad_form)

    after = {ns: _state(admin_api, ns, system=system) for ns, system in watched.items()}
    for ns in watched:
        if after[ns] != before[ns]:
            failures.append(f"namespace {ns} changed: {_difference(before[ns], after[ns])}")
    audit = bob.http.get(audit_url)
    if audit.status_code != 200 or audit.json() != audit_before:
        failures.append(f"the audit log of {bob.namespace} changed: {audit.status_code}")
    for url in (f"/namespaces/{bob.namespace}", f"/namespaces/{bob.namespace}/apps/web"):
        expect(f"bob's own {url}", _ask(bob.http, "GET", url), 200)

    # -- the pages without a namespace ------------------------------------------------------------
    bob_token_id = bob_token.json()["id"]
    bob_sessions = bob.http.get("/api/v1/sessions")
    assert bob_sessions.status_code == 200, bob_sessions.text
    bob_session_id = next(s["id"] for s in bob_sessions.json()["items"] if s["current"])
    for route in (r for r in routes if "{namespace}" not in r.path):
        unknown = set(route.param_convertors) - {"token_id", "session_id"}
        assert not unknown, f"{route.path}: teach the matrix to fill {unknown}"
        path = route.path.format(token_id=bob_token_id, session_id=bob_session_id)
        for method in sorted(route.methods):
            signed_out: tuple[int, str | None] = (303, to_sign_in(path))
            if route.path == "/":
                signed_out = (200, None)
            elif route.path == "/logout":  # the form is checked first: there is nobody to find
                signed_out = (403, None)
            csrf_only = {"csrf": alice_csrf} if method == "POST" else None
            answer = _ask(anonymous, method, path, csrf_only)
            expect(f"signed out: {method} {path}", answer, *signed_out)
            answer = _ask(anonymous, method, path, csrf_only, headers=alice_bearer)
            expect(f"API token: {method} {path}", answer, *signed_out)
            if method == "POST":
                for label, csrf in (("no CSRF", None), ("another session's CSRF", bob_csrf)):
                    form = {"name": f"{alice.namespace}-x", "expires_in_days": "1"}
                    form |= {"csrf": csrf} if csrf else {}
                    expect(f"{label}: POST {path}", _ask(alice.http, "POST", path, form), 403)

    dashboard = _ask(alice.http, "GET", "/dashboard")
    expect("own dashboard", dashboard, 200)
    check(alice.namespace in dashboard.text, "alice's dashboard lacks her namespace")
    check(bob.namespace not in dashboard.text, "alice's dashboard shows bob's namespace")
    tokens = _ask(alice.http, "GET", "/tokens")
    expect("own tokens", tokens, 200)
    check(alice_token.json()["name"] in tokens.text, "alice's /tokens lacks her token")
    check(bob_token.json()["name"] not in tokens.text, "alice's /tokens shows bob's token")
    check(f"/tokens/{bob_token_id}/revoke" not in tokens.text, "alice's /tokens shows bob's id")
    for path in ("/admin", "/admin?offset=0"):
        answer = _ask(alice.http, "GET", path)
        expect(f"tenant: GET {path}", answer, 403)
        check(bob.namespace not in answer.text, f"alice's {path} shows bob's namespace")
    unknown_id = bob_token_id + 10**6
    revoke = _ask(alice.http, "POST", f"/tokens/{bob_token_id}/revoke", {"csrf": alice_csrf})
    expect("revoke bob's token", revoke, 404)
    reference = _ask(alice.http, "POST", f"/tokens/{unknown_id}/revoke", {"csrf": alice_csrf})
    expect("revoke a token that does not exist", reference, 404)
    if revoke.text.replace(f"token {bob_token_id} ", "token ID ") != reference.text.replace(
        f"token {unknown_id} ", "token ID "
    ):
        failures.append(f"revoking bob's token differs from revoking a missing one:\n{revoke.text}")
    unknown_session = bob_session_id + 10**6
    end = _ask(alice.http, "POST", f"/sessions/{bob_session_id}/end", {"csrf": alice_csrf})
    expect("sign out bob's browser", end, 404)
    reference = _ask(alice.http, "POST", f"/sessions/{unknown_session}/end", {"csrf": alice_csrf})
    expect("sign out a browser that does not exist", reference, 404)
    if end.text.replace(f"session {bob_session_id} ", "session ID ") != reference.text.replace(
        f"session {unknown_session} ", "session ID "
    ):
        failures.append(f"ending bob's session differs from ending a missing one:\n{end.text}")
    expect("bob still signed in", _ask(bob.http, "GET", "/dashboard"), 200)
    for name, refusal in ((bob.namespace, "must be named"), ("kube-system", "reserved")):
        form = {"name": name, "csrf": alice_csrf}
        answer = _ask(alice.http, "POST", "/namespaces", form)
        expect(f"create namespace {name}", answer, 200)  # the dashboard, with the field's error
        check(refusal in answer.text, f"create namespace {name}: no '{refusal}' error")
    # Still signed in (the logout without CSRF did nothing), still only one's own namespaces.
    owned = alice.http.get("/api/v1/namespaces")
    check(
        owned.status_code == 200
        and [n["name"] for n in owned.json()["items"]] == [alice.namespace],
        f"alice's namespaces changed (or she was signed out): {owned.status_code} {owned.text}",
    )
    listed = alice.http.get("/api/v1/tokens")
    check(
        listed.status_code == 200
        and [t["name"] for t in listed.json()["items"]] == [alice_token.json()["name"]],
        f"alice's tokens changed: {listed.status_code} {listed.text}",
    )
    me = anonymous.get("/api/v1/me", headers=bob_bearer)
    check(
        me.status_code == 200 and me.json()["login"] == bob.login,
        f"bob's token stopped working: {me.text}",
    )
    check(
        _state(admin_api, bob.namespace, system=False) == before[bob.namespace],
        f"namespace {bob.namespace} changed by the pages without a namespace",
    )

    # -- the same forms in one's own namespace work: the refusals above were not for nothing ------
    def order(page: Page) -> tuple[bool, bool, bool, str]:
        t = page.template
        return (t == "/namespaces/{namespace}/delete", t.endswith("/delete"), "edit" in t, t)

    for page in sorted((p for p in namespaced if p.method == "POST"), key=order):
        path = page.path(alice.namespace, names[alice.namespace])
        form = _form(page, alice.namespace, names[alice.namespace], admin_api, domain)
        answer = _ask(alice.http, "POST", path, form | {"csrf": alice_csrf})
        expect(f"own: {page}", answer, 404 if page.checks_kind_first else 303)
        if answer.status == 303 and (answer.then != 200 or 'class="flash bad"' in answer.text):
            failures.append(f"own: {page}: {answer.then} {answer.text}")
    gone = _get(admin_api, f"/api/v1/namespaces/{alice.namespace}")
    check(
        gone is None or bool(gone["metadata"].get("deletionTimestamp")),
        "alice's namespace is not being deleted after her own delete form",
    )
    anonymous.close()

    with capsys.disabled():
        kinds = len({(p.method, p.template) for p in namespaced})
        print(
            f"\npages isolation matrix: {kinds} namespaced routes ({len(namespaced)} with the"
            f" kinds), {len(routes)} page routes, {cases} cases,"
            f" {cases - len(failures)} as expected, {time.monotonic() - started:.1f} s"
        )
    assert not failures, "\n".join(failures)
    assert cases >= MIN_CASES
