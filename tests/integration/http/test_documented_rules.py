"""What the README promises a tenant and an operator, each checked against the real control plane.

Stale updates are a 409; a host held by an Ingress made outside Kuberth is a 409; sign-up rules hold
at every sign-in; a kubeconfig's token lives as long as the setting says; personal names carry the
operator's prefix; an expired API token is a 401; an ambiguous host belongs to the longest
namespace; the session cookie is Secure behind https.
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from sqlalchemy import create_engine, update

from kuberth.devtools.github import StandInServer
from kuberth.storage.database.models import ApiToken
from tests.integration.conftest import KuberthFactory, Tenant
from tests.integration.objects import native_ingress
from tests.integration.signin import sign_in

APPS = "apps.localhost"
PATHS = [{"path": "/", "service": "web", "port": 80}]


def _login() -> str:
    return f"d{secrets.token_hex(4)}"


def _full(http: httpx.Client, url: str) -> dict[str, Any]:
    """The stored Kubernetes object, as a tenant reads it through Kuberth."""
    response = http.get(url, params={"full": "true"})
    assert response.status_code == 200, response.text
    obj: dict[str, Any] = response.json()["object"]
    return obj


@pytest.fixture
def tenant_api(tmp_path: Path) -> Iterator[Callable[[Tenant], client.ApiClient]]:
    """A Kubernetes client from a tenant's downloaded kubeconfig: what kubectl would use."""
    opened: list[client.ApiClient] = []

    def open_for(tenant: Tenant) -> client.ApiClient:
        downloaded = tenant.http.get(f"/api/v1/namespaces/{tenant.namespace}/kubeconfig")
        assert downloaded.status_code == 200, downloaded.text
        path = tmp_path / f"{tenant.login}.kubeconfig"
        path.write_text(downloaded.text)
        api: client.ApiClient = config.new_client_from_config(str(path))
        opened.append(api)
        return api

    yield open_for
    for api in opened:
        api.close()


# -- 1. a stale metadata.resourceVersion is a 409, never a lost update -----------------------------


def test_a_stale_update_of_a_service_is_409_and_loses_nothing(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    url = f"/api/v1/namespaces/{ns}/services"
    created = http.post(url, json={"name": "web", "app": "web", "ports": [{"port": 80}]})
    assert created.status_code == 201, created.text
    old = _full(http, f"{url}/web")

    fresh = {**old, "metadata": {**old["metadata"], "labels": {"writer": "first"}}}
    first = http.put(f"{url}/web", json=fresh)
    assert first.status_code == 200, first.text
    written = client.CoreV1Api(admin_api).read_namespaced_service("web", ns)
    assert written.metadata.labels["writer"] == "first"

    stale_put = http.put(
        f"{url}/web", json={**old, "metadata": {**old["metadata"], "labels": {"writer": "put"}}}
    )
    assert stale_put.status_code == 409, stale_put.text
    assert stale_put.json()["error"] == "conflict"
    stale_patch = http.patch(
        f"{url}/web",
        json={
            "metadata": {
                "resourceVersion": old["metadata"]["resourceVersion"],
                "labels": {"writer": "patch"},
            }
        },
    )
    assert stale_patch.status_code == 409, stale_patch.text
    assert stale_patch.json()["error"] == "conflict"

    stored = client.CoreV1Api(admin_api).read_namespaced_service("web", ns)
    assert stored.metadata.labels["writer"] == "first"
    assert stored.metadata.resource_version == written.metadata.resource_version


def test_a_stale_update_of_an_ingress_is_409_and_holds_no_host(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    url = f"/api/v1/namespaces/{ns}/ingresses"
    first_host, moved_host, patched_host = (f"{n}-{ns}.{APPS}" for n in ("web", "moved", "patched"))
    created = http.post(url, json={"name": "web", "host": first_host, "paths": PATHS})
    assert created.status_code == 201, created.text
    old = _full(http, f"{url}/web")

    labelled = http.patch(f"{url}/web", json={"metadata": {"labels": {"writer": "first"}}})
    assert labelled.status_code == 200, labelled.text
    networking = client.NetworkingV1Api(admin_api)
    written = networking.read_namespaced_ingress("web", ns)

    stale = json.loads(json.dumps(old))
    stale["spec"]["rules"][0]["host"] = moved_host
    stale_put = http.put(f"{url}/web", json=stale)
    assert stale_put.status_code == 409, stale_put.text
    assert stale_put.json()["error"] == "conflict"
    stale_patch = http.patch(
        f"{url}/web",
        json={
            "metadata": {"resourceVersion": old["metadata"]["resourceVersion"]},
            "spec": {"rules": [{"host": patched_host}]},
        },
    )
    assert stale_patch.status_code == 409, stale_patch.text
    assert stale_patch.json()["error"] == "conflict"

    stored = networking.read_namespaced_ingress("web", ns)
    assert stored.metadata.resource_version == written.metadata.resource_version
    assert [rule.host for rule in stored.spec.rules] == [first_host]
    # Nothing was written, so nothing is held: the hosts the stale writes asked for are free, and
    # the Ingress's own host is still its own.
    for name, host in (("moved", moved_host), ("patched", patched_host)):
        taken = http.post(url, json={"name": name, "host": host, "paths": PATHS})
        assert taken.status_code == 201, taken.text
    duplicate = http.post(url, json={"name": "dup", "host": first_host, "paths": PATHS})
    assert duplicate.status_code == 409, duplicate.text


# -- 2. a host held by an Ingress made outside Kuberth's API is a 409 ------------------------------


def test_a_host_held_by_an_ingress_the_tenant_made_with_kubectl_is_409(
    tenants: Callable[..., Tenant],
    tenant_api: Callable[[Tenant], client.ApiClient],
    admin_api: client.ApiClient,
) -> None:
    alice = tenants()
    ns, http = alice.namespace, alice.http
    host = f"shop-{ns}.{APPS}"
    as_kubectl = client.NetworkingV1Api(tenant_api(alice))
    as_kubectl.create_namespaced_ingress(ns, native_ingress("by-kubectl", host))

    url = f"/api/v1/namespaces/{ns}/ingresses"
    created = http.post(url, json={"name": "web", "host": host, "paths": PATHS})
    assert created.status_code == 409, created.text
    assert created.json()["error"] == "conflict"
    assert created.json()["field"] == "host"
    networking = client.NetworkingV1Api(admin_api)
    with pytest.raises(ApiException) as missing:
        networking.read_namespaced_ingress("web", ns)
    assert missing.value.status == 404

    # Moving an existing Ingress onto the host is refused the same way, and changes nothing.
    other = http.post(url, json={"name": "other", "host": f"other-{ns}.{APPS}", "paths": PATHS})
    assert other.status_code == 201, other.text
    before = networking.read_namespaced_ingress("other", ns)
    moved = http.patch(f"{url}/other", json={"spec": {"rules": [{"host": host}]}})
    assert moved.status_code == 409, moved.text
    after = networking.read_namespaced_ingress("other", ns)
    assert after.metadata.resource_version == before.metadata.resource_version
    # ...and the Ingress still holds its own host in Kuberth's table (the 409 names it).
    dup = http.post(url, json={"name": "dup", "host": f"other-{ns}.{APPS}", "paths": PATHS})
    assert dup.status_code == 409, dup.text
    assert "ingress other" in dup.json()["message"]

    # Once the kubectl-made Ingress is gone, the host is free.
    as_kubectl.delete_namespaced_ingress("by-kubectl", ns)
    freed = http.post(url, json={"name": "web", "host": host, "paths": PATHS})
    assert freed.status_code == 201, freed.text


def test_a_host_another_tenant_holds_with_kubectl_is_409(
    tenants: Callable[..., Tenant],
    tenant_api: Callable[[Tenant], client.ApiClient],
    admin_api: client.ApiClient,
) -> None:
    """Alice's kubectl Ingress holds a host that, once Bob has the longer namespace, is in Bob's
    subdomain too: Kuberth's API still refuses it to Bob."""
    alice, bob = tenants(), tenants()
    longer = f"{bob.namespace}-{alice.namespace}"
    host = (
        f"web-{longer}.{APPS}"  # ends in -<alice's namespace>: Alice's while no longer one exists
    )
    client.NetworkingV1Api(tenant_api(alice)).create_namespaced_ingress(
        alice.namespace, native_ingress("by-kubectl", host)
    )
    created = bob.http.post("/api/v1/namespaces", json={"name": longer})
    assert created.status_code == 201, created.text

    refused = bob.http.post(
        f"/api/v1/namespaces/{longer}/ingresses",
        json={"name": "web", "host": host, "paths": PATHS},
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "host"
    networking = client.NetworkingV1Api(admin_api)
    assert not networking.list_namespaced_ingress(longer).items
    assert (
        networking.read_namespaced_ingress("by-kubectl", alice.namespace).spec.rules[0].host == host
    )


def test_a_host_held_by_an_ingress_made_directly_in_another_namespace_is_409(
    kuberth: KuberthFactory,
    github: StandInServer,
    new_id: Callable[[], int],
    namespace: str,
    admin_api: client.ApiClient,
) -> None:
    """An Ingress an admin wrote straight to Kubernetes (no row in Kuberth's table of hosts)."""
    login, user_id = _login(), new_id()
    domain = f"d{secrets.token_hex(4)}.example"
    host = f"www.{domain}"
    networking = client.NetworkingV1Api(admin_api)
    networking.create_namespaced_ingress(namespace, native_ingress("direct", host))
    with kuberth(custom_domains={domain: [user_id]}) as http:
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        url = f"/api/v1/namespaces/{login}/ingresses"
        refused = http.post(url, json={"name": "www", "host": host, "paths": PATHS})
        assert refused.status_code == 409, refused.text
        assert refused.json()["field"] == "host"
        # The rest of the operator's domain is the tenant's to use.
        other = http.post(url, json={"name": "api", "host": f"api.{domain}", "paths": PATHS})
        assert other.status_code == 201, other.text
    assert networking.read_namespaced_ingress("direct", namespace).spec.rules[0].host == host
    assert not networking.list_namespaced_ingress(login, field_selector="metadata.name=www").items


# -- 3. sign-up rules are checked at every sign-in ---------------------------------------------


def test_a_user_no_longer_listed_is_refused_at_the_next_sign_in(
    kuberth: KuberthFactory,
    github: StandInServer,
    new_id: Callable[[], int],
    sqlite_url: str,
    admin_api: client.ApiClient,
) -> None:
    login, user_id = _login(), new_id()
    with kuberth(database_url=sqlite_url, signup_anyone=False, signup_logins=[login]) as http:
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        assert http.get("/api/v1/me").status_code == 200
    # The operator narrows the rules; the same database, a restarted Kuberth.
    with kuberth(database_url=sqlite_url, signup_anyone=False, signup_logins=[f"x{login}"]) as http:
        refused = sign_in(http, github, login=login, user_id=user_id)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "forbidden"
        assert http.get("/api/v1/me").status_code == 401
    # Refusing a sign-in takes nothing away: the namespace is still there for an operator to see.
    assert client.CoreV1Api(admin_api).read_namespace(login).metadata.labels[
        "kuberth.dev/owner-id"
    ] == str(user_id)


def test_a_member_who_left_the_org_is_refused_at_the_next_sign_in(
    kuberth: KuberthFactory, github: StandInServer, new_id: Callable[[], int]
) -> None:
    login, user_id = _login(), new_id()
    with kuberth(signup_anyone=False, signup_orgs=["acme"]) as http:
        signed_up = sign_in(http, github, login=login, user_id=user_id, orgs=["acme"])
        assert signed_up.status_code == 302
        assert http.post("/auth/logout").status_code == 204
        refused = sign_in(http, github, login=login, user_id=user_id, orgs=["elsewhere"])
        assert refused.status_code == 403, refused.text
        assert http.get("/api/v1/me").status_code == 401
        # Back in the org: welcome again.
        again = sign_in(http, github, login=login, user_id=user_id, orgs=["acme"])
        assert again.status_code == 302
        assert [n["name"] for n in http.get("/api/v1/me").json()["namespaces"]] == [login]


# -- 4. KUBERTH_KUBECONFIG_TOKEN_LIFETIME ---------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.mark.parametrize("lifetime", [600, 7200])
def test_a_kubeconfigs_token_expires_after_the_configured_lifetime(
    lifetime: int,
    kuberth: KuberthFactory,
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
) -> None:
    """The expiry Kubernetes signed into the token. Kubernetes issues no token for less than ten
    minutes (the setting's minimum), so its actual end is not waited for here."""
    login, user_id = _login(), new_id()
    with kuberth(kubeconfig_token_lifetime=lifetime) as http:
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        downloaded = http.get(f"/api/v1/namespaces/{login}/kubeconfig")
        assert downloaded.status_code == 200, downloaded.text
    token = yaml.safe_load(downloaded.text)["users"][0]["user"]["token"]

    claims = _claims(token)
    assert claims["exp"] - claims["iat"] == lifetime
    now = datetime.datetime.now(datetime.UTC).timestamp()
    assert claims["iat"] - 60 <= now <= claims["exp"]
    review = client.AuthenticationV1Api(admin_api).create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert review.status.authenticated, review.status.error
    assert review.status.user.username == f"system:serviceaccount:{login}:kuberth-user-{user_id}"


# -- 5. KUBERTH_NAMESPACE_PREFIX ------------------------------------------------------------------


def test_personal_namespaces_are_the_prefix_and_the_login_and_extras_follow_them(
    kuberth: KuberthFactory,
    github: StandInServer,
    new_id: Callable[[], int],
    admin_api: client.ApiClient,
) -> None:
    prefix = "tp-"
    login, user_id = f"Pre{secrets.token_hex(3)}", new_id()
    personal = f"{prefix}{login.lower()}"
    taken_login, taken_id = _login(), new_id()
    core = client.CoreV1Api(admin_api)
    with kuberth(namespace_prefix=prefix, reserved_namespaces=[f"{prefix}{taken_login}"]) as http:
        assert sign_in(http, github, login=login, user_id=user_id).status_code == 302
        me = http.get("/api/v1/me").json()
        assert [n["name"] for n in me["namespaces"]] == [personal]
        labels = core.read_namespace(personal).metadata.labels
        assert labels["kuberth.dev/owner-id"] == str(user_id)
        with pytest.raises(ApiException) as unprefixed:
            core.read_namespace(login.lower())
        assert unprefixed.value.status == 404

        extra = http.post("/api/v1/namespaces", json={"name": f"{personal}-staging"})
        assert extra.status_code == 201, extra.text
        outside = http.post("/api/v1/namespaces", json={"name": f"{login.lower()}-staging"})
        assert outside.status_code == 403, outside.text
        assert outside.json()["field"] == "name"
        assert f"{personal}-<suffix>" in outside.json()["message"]
        listed = http.get("/api/v1/namespaces").json()["items"]
        assert sorted(n["name"] for n in listed) == [personal, f"{personal}-staging"]

        # When <prefix><login> cannot be had, the alternative keeps the prefix too.
        http.cookies.clear()
        assert sign_in(http, github, login=taken_login, user_id=taken_id).status_code == 302
        names = [n["name"] for n in http.get("/api/v1/me").json()["namespaces"]]
        assert names == [f"{prefix}{taken_login}--{taken_id}"]


# -- 6. API token expiry --------------------------------------------------------------------------


def test_an_expired_api_token_is_refused_with_401(
    kuberth: KuberthFactory, github: StandInServer, new_id: Callable[[], int], database_url: str
) -> None:
    login = _login()
    # The stored expiry is moved instead of waiting a day: a verdict kept from before the move
    # would outlive it (a real expiry also ends a kept verdict), so none is kept here.
    with kuberth(database_url=database_url, token_cache_seconds=0) as http:
        assert sign_in(http, github, login=login, user_id=new_id()).status_code == 302
        created = http.post("/api/v1/tokens", json={"name": "short", "expires_in_days": 1})
        assert created.status_code == 201, created.text
        token, token_id = created.json()["token"], created.json()["id"]
        expires = datetime.datetime.fromisoformat(created.json()["expires_at"])
        now = datetime.datetime.now(datetime.UTC)
        assert now < expires <= now + datetime.timedelta(days=1)
        http.cookies.clear()
        bearer = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/v1/me", headers=bearer).status_code == 200

        # A day later, as far as the stored expiry is concerned.
        engine = create_engine(database_url)
        try:
            with engine.begin() as db:
                past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
                moved = db.execute(
                    update(ApiToken).where(ApiToken.id == token_id).values(expires_at=past)
                )
                assert moved.rowcount == 1
        finally:
            engine.dispose()

        for path in ("/api/v1/me", f"/api/v1/namespaces/{login}", "/api/v1/tokens"):
            refused = http.get(path, headers=bearer)
            assert refused.status_code == 401, (path, refused.text)
            assert refused.json()["error"] == "unauthenticated"


# -- 7. a host two namespaces' subdomains fit belongs to the longest existing namespace ------------


def test_an_ambiguous_host_belongs_to_the_longest_existing_namespace(
    tenants: Callable[..., Tenant],
) -> None:
    alice, bob = tenants(), tenants()
    longer = f"{bob.namespace}-{alice.namespace}"  # Bob's extra namespace ends in -<alice's>
    early, late = f"early-{longer}.{APPS}", f"late-{longer}.{APPS}"
    nested = f"www.{longer}.{APPS}"  # *.<longer>, and also "<www.bob>-<alice>"

    def ingress(tenant: Tenant, namespace: str, name: str, host: str) -> httpx.Response:
        body = {"name": name, "host": host, "paths": PATHS}
        return tenant.http.post(f"/api/v1/namespaces/{namespace}/ingresses", json=body)

    # While only Alice's namespace fits, the host is hers.
    assert ingress(alice, alice.namespace, "early", early).status_code == 201

    created = bob.http.post("/api/v1/namespaces", json={"name": longer})
    assert created.status_code == 201, created.text

    # Now the longer namespace's subdomain holds such hosts: not Alice's any more, but Bob's.
    for name, host in (("late", late), ("nested", nested)):
        refused = ingress(alice, alice.namespace, name, host)
        assert refused.status_code == 403, (host, refused.text)
        assert refused.json()["field"] == "spec.rules[0].host"
        assert ingress(bob, longer, name, host).status_code == 201, host
    # A host Alice already holds stays hers (held by another Ingress: 409).
    taken = ingress(bob, longer, "early", early)
    assert taken.status_code == 409, taken.text
    # Hosts only Alice's namespace fits are still hers.
    assert (
        ingress(alice, alice.namespace, "own", f"own-{alice.namespace}.{APPS}").status_code == 201
    )


# -- 8. the session cookie is Secure behind https -----------------------------------------------


def _session_cookie_attributes(response: httpx.Response, name: str) -> dict[str, str]:
    for header in response.headers.get_list("set-cookie"):
        found, _, rest = header.partition("=")
        if found == name:
            parts = (part.strip().partition("=") for part in rest.split(";")[1:])
            return {key.lower(): value for key, _, value in parts}
    raise AssertionError(f"no {name} cookie set: {response.headers}")


@pytest.mark.parametrize(
    ("public_url", "secure"), [("https://testserver", True), ("http://testserver", False)]
)
def test_the_session_cookie_is_secure_exactly_when_the_public_url_is_https(
    public_url: str,
    secure: bool,
    kuberth: KuberthFactory,
    github: StandInServer,
    new_id: Callable[[], int],
) -> None:
    with kuberth(public_url=public_url) as http:
        http.base_url = httpx.URL(public_url)
        # On https the __Host- prefix: Secure, path /, no Domain (browsers enforce all three).
        name = "__Host-kuberth_session" if secure else "kuberth_session"
        started = http.get("/auth/github/login")
        assert started.status_code == 302
        assert ("secure" in _session_cookie_attributes(started, name)) is secure
        http.cookies.clear()
        signed_in = sign_in(http, github, login=_login(), user_id=new_id())
        assert signed_in.status_code == 302, signed_in.text
        attributes = _session_cookie_attributes(signed_in, name)
        assert ("secure" in attributes) is secure
        assert {"httponly", "samesite", "path"} <= attributes.keys()
        assert attributes["path"] == "/"
        assert "domain" not in attributes
        assert http.get("/api/v1/me").status_code == 200
