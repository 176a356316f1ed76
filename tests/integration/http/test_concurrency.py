"""Races: many first sign-ins at once, concurrent updates of one object, two claims of one host."""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
from kubernetes import client

from kuberth.devtools.github import StandInServer
from tests.integration.conftest import Tenant
from tests.integration.signin import authorize
from tests.timing import scaled


def test_twenty_simultaneous_first_sign_ins_of_one_user_and_of_twenty_users(
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    database_url: str,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    same_login, same_id = f"c{secrets.token_hex(4)}", new_id()
    others = [(f"c{secrets.token_hex(4)}", new_id()) for _ in range(20)]
    people = [(same_login, same_id)] * 20 + others
    with kuberth_server(database_url=database_url) as url:
        # Each browser's sign-in start leaves a keep-alive connection to Kuberth, reused by its
        # callback once all 40 have started, seconds later. httpx keeps an idle connection as
        # long as uvicorn does (5 s), so one idle for about that long could be reused just as the
        # server closed it: the likely cause of a connection reset seen once on a slow, busy
        # machine. A browser that drops idle connections after 1 s never reuses one the server
        # is closing.
        keepalive = httpx.Limits(keepalive_expiry=1)
        browsers = [
            httpx.Client(base_url=url, timeout=scaled(120), limits=keepalive) for _ in people
        ]
        callbacks = [
            authorize(b, github, login=login, user_id=uid)
            for b, (login, uid) in zip(browsers, people, strict=True)
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(people)) as pool:
            answers = list(
                pool.map(lambda p: p[0].get(p[1]), zip(browsers, callbacks, strict=True))
            )
        assert [a.status_code for a in answers] == [302] * len(people)
        mine = {
            tuple(n["name"] for n in b.get("/api/v1/me").json()["namespaces"])
            for b in browsers[:20]
        }
        for browser in browsers:
            browser.close()
    assert mine == {(same_login,)}
    core = client.CoreV1Api(admin_api)
    owned = core.list_namespace(label_selector=f"kuberth.dev/owner-id={same_id}").items
    assert [ns.metadata.name for ns in owned] == [same_login]
    for login, uid in others:
        names = [
            ns.metadata.name
            for ns in core.list_namespace(label_selector=f"kuberth.dev/owner-id={uid}").items
        ]
        assert names == [login]


def test_concurrent_updates_of_one_deployment_lose_nothing(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    """Ten writers, each setting its own label from the same version: one wins, nine get 409,
    and the stored object is exactly the winner's."""
    alice = tenants()
    url = f"/api/v1/namespaces/{alice.namespace}/deployments"
    created = alice.http.post(url, json={"name": "web", "image": "nginx:1.27"})
    assert created.status_code == 201, created.text
    # Once rolled out, only the writers below change it (controllers are done with its status).
    # The wait is generous: right after the sign-in storm above, the controllers still work
    # through dozens of new and deleted namespaces (the pods need a default ServiceAccount).
    rollout = alice.http.get(f"{url}/web/rollout", params={"timeout": 120}).json()
    assert rollout["outcome"] == "complete", rollout
    read = alice.http.get(f"{url}/web", params={"full": "true"})
    assert read.status_code == 200, read.text
    current = read.json()["object"]

    def write(i: int) -> int:
        mine = {
            **current,
            "metadata": {**current["metadata"], "labels": {"app": "web", "writer": str(i)}},
        }
        return alice.http.put(f"{url}/web", json=mine).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(write, range(10)))
    assert sorted(codes) == [200] + [409] * 9
    winner = codes.index(200)
    stored = client.AppsV1Api(admin_api).read_namespaced_deployment("web", alice.namespace)
    assert stored.metadata.labels["writer"] == str(winner)


def test_two_apps_claiming_one_host_at_once_exactly_one_wins(
    tenants: Callable[..., Tenant], admin_api: client.ApiClient
) -> None:
    alice = tenants()
    host = f"shared.{alice.namespace}.apps.localhost"

    def create(name: str) -> int:
        body = {"name": name, "image": "nginx:1.27", "host": host}
        return alice.http.post(f"/api/v1/namespaces/{alice.namespace}/apps", json=body).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(create, ["one", "two"]))
    assert sorted(codes) == [201, 409]
    ingresses = client.NetworkingV1Api(admin_api).list_namespaced_ingress(alice.namespace).items
    assert [i.spec.rules[0].host for i in ingresses] == [host]
    loser = ["one", "two"][codes.index(409)]
    only_loser = f"metadata.name={loser}"
    # All or nothing: the loser left no part of its app behind.
    assert not (
        client.AppsV1Api(admin_api)
        .list_namespaced_deployment(alice.namespace, field_selector=only_loser)
        .items
    )
    assert not (
        client.CoreV1Api(admin_api)
        .list_namespaced_service(alice.namespace, field_selector=only_loser)
        .items
    )
