"""Pod logs through the API, and why pods do not start, against real containers on the real node.

The demo worker logs ``work item <n> done ...`` every ``$INTERVAL``; its lines come back through
Kuberth as the tenant, prefixed as ``kubectl logs --prefix`` does. Skipped where the machine has
no real node (the ``real_node`` fixture says why).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any, cast

import httpx
import pytest
from kubernetes import client

from kuberth.cluster.build import Builder
from kuberth.cluster.node.runtime import RealNode
from kuberth.cluster.versions import Versions
from kuberth.devtools.github import StandInServer
from kuberth.settings import Settings
from tests.integration.conftest import ON_REAL_NODE, Tenant, _signed_in_tenants
from tests.timing import eventually, scaled

LINE = re.compile(r"^\[pod/(work-[a-z0-9]+-[a-z0-9]+)/work\] .*work item (\d+) done")
PER_TENANT = 2  # long waits a tenant may hold at once, here


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    node = Builder(cache_dir=Settings().cache_dir, versions=Versions(), progress=print)
    return {name: image.reference for name, image in node.ensure_node().images.items()}


@pytest.fixture
def people(
    real_node: RealNode,
    kuberth_server: Callable[..., AbstractContextManager[str]],
    github: StandInServer,
    new_id: Callable[[], int],
) -> Iterator[tuple[str, Callable[[], Tenant]]]:
    """As `real_node_tenants` (pods on the real node), with a small long-wait cap; and the
    server's URL, for its /metrics."""
    settings = {**ON_REAL_NODE, "long_waits_per_tenant": PER_TENANT, "log_follow_timeout": 120}
    with (
        kuberth_server(**settings) as url,
        _signed_in_tenants(url, github, new_id) as make,
    ):
        yield url, make


def lines(text: str) -> list[tuple[str, int]]:
    """(pod, item) of every line; each must carry the prefix."""
    found = []
    for line in text.splitlines():
        match = LINE.match(line)
        assert match, f"not a prefixed worker line: {line!r}"
        found.append((match.group(1), int(match.group(2))))
    return found


def make_worker(tenant: Tenant, images: dict[str, str], *, replicas: int = 2) -> str:
    """An app of the demo worker logging every 0.2 s; returns its logs URL once every pod has
    logged at least three lines."""
    ns = tenant.namespace
    app = {
        "name": "work",
        "image": images["worker"],
        "replicas": replicas,
        "env": {"INTERVAL": "200ms"},
    }
    created = tenant.http.post(f"/api/v1/namespaces/{ns}/apps", json=app)
    assert created.status_code == 201, created.text
    url = f"/api/v1/namespaces/{ns}/apps/work/logs"

    def logged() -> bool:
        response = tenant.http.get(url)
        if response.status_code != 200:
            return False
        per_pod: dict[str, int] = {}
        for pod, _ in lines(response.text):
            per_pod[pod] = per_pod.get(pod, 0) + 1
        return len(per_pod) == replicas and min(per_pod.values()) >= 3

    eventually(logged, within=60, what="every worker pod logging", interval=0.3)
    return url


def error(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def test_recent_lines_prefixed_with_tail_since_container_and_pod(
    people: tuple[str, Callable[[], Tenant]], images: dict[str, str]
) -> None:
    _, tenant = people
    alice, bob = tenant(), tenant()
    url = make_worker(alice, images)

    response = alice.http.get(url)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    everything = lines(response.text)
    pods = sorted({pod for pod, _ in everything})
    assert len(pods) == 2

    # The Deployment's route reads the same pods.
    same = alice.http.get(f"/api/v1/namespaces/{alice.namespace}/deployments/work/logs")
    assert same.status_code == 200
    assert {pod for pod, _ in lines(same.text)} == set(pods)

    # tail: lines per container, the newest.
    two = lines(alice.http.get(url, params={"tail": 2}).text)
    assert sorted(pod for pod, _ in two) == [pods[0], pods[0], pods[1], pods[1]]
    assert alice.http.get(url, params={"tail": 0}).text == ""

    # since: only each container's newest lines (its pods started at different moments, so
    # compare pod by pod); a long window is everything.
    def by_pod(found: list[tuple[str, int]]) -> dict[str, list[int]]:
        return {pod: [n for p, n in found if p == pod] for pod in pods}

    def windowed() -> tuple[dict[str, list[int]], dict[str, list[int]]] | None:
        full = by_pod(lines(alice.http.get(url, params={"tail": 10000}).text))
        recent = by_pod(lines(alice.http.get(url, params={"tail": 10000, "since": "1s"}).text))
        narrower = all(0 < len(recent[pod]) < len(full[pod]) for pod in pods)
        return (full, recent) if narrower else None

    full, recent = eventually(windowed, within=30, what="since=1s narrower than the whole log")
    for pod in pods:
        assert min(recent[pod]) > min(full[pod])
        assert recent[pod] == sorted(recent[pod])
    for since in ("2h", "7200", "120m"):
        assert len(lines(alice.http.get(url, params={"since": since}).text)) >= len(everything)

    # container and pod.
    assert lines(alice.http.get(url, params={"container": "work", "tail": 1}).text)
    one = lines(alice.http.get(url, params={"pod": pods[1]}).text)
    assert {pod for pod, _ in one} == {pods[1]}

    # Bad input names the field.
    for params, status, field in [
        ({"tail": -1}, 422, "tail"),
        ({"tail": 10001}, 422, "tail"),
        ({"tail": "x"}, 422, "tail"),
        ({"since": "yesterday"}, 422, "since"),
        ({"since": "0"}, 422, "since"),
        ({"since": "5d"}, 422, "since"),
        ({"follow": "maybe"}, 422, "follow"),
        ({"container": "nope"}, 404, "container"),
        ({"pod": "work-nope-x"}, 404, "pod"),
        ({"previous": "true"}, 409, "previous"),  # nothing has crashed
    ]:
        refused = alice.http.get(url, params=params)
        assert refused.status_code == status, (params, refused.text)
        assert error(refused)["field"] == field, (params, refused.text)

    # Another tenant gets nothing: the same 404 as for a Deployment that does not exist.
    for path in (url, f"/api/v1/namespaces/{alice.namespace}/deployments/work/logs"):
        theirs = bob.http.get(path)
        missing = bob.http.get(path.replace("/work/", "/nothing/"))
        assert theirs.status_code == missing.status_code == 404
        assert error(theirs) == error(missing)
    # And an app's route is only for apps: bob's own plain Deployment is not an app.
    made = bob.http.post(
        f"/api/v1/namespaces/{bob.namespace}/deployments",
        json={"name": "plain", "image": images["worker"]},
    )
    assert made.status_code == 201, made.text
    not_app = bob.http.get(f"/api/v1/namespaces/{bob.namespace}/apps/plain/logs")
    assert not_app.status_code == 404
    assert error(not_app)["message"] == "app plain not found"


def follow_until_new_line(
    http: httpx.Client, url: str, after: int, stack: ExitStack
) -> tuple[str, int]:
    """Open a follow (kept open in ``stack``) and read until a line with an item past ``after``
    arrives: one the container wrote after the request started."""
    response = stack.enter_context(http.stream("GET", url, params={"follow": "true", "tail": 1}))
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    # Read with next(), not a for loop: leaving a for loop over iter_lines() would close the
    # response, and the follow with it.
    incoming = cast(Generator[str, None, None], response.iter_lines())  # a generator, in fact
    stack.callback(incoming.close)  # closed with the response, when the client goes away
    for _ in range(10_000):
        [(pod, item)] = lines(next(incoming))
        if item > after:
            return pod, item
    raise AssertionError("no new line came")


def open_follows(base: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    match = re.search(r"^kuberth_log_follows_open (\S+)$", text, re.MULTILINE)
    assert match, "no kuberth_log_follows_open in /metrics"
    return float(match.group(1))


def upstream_log_streams(admin_api: client.ApiClient) -> float:
    """Log streams the API server holds open now (its own long-running request gauge)."""
    configuration = admin_api.configuration
    tls = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    tls.load_cert_chain(configuration.cert_file, configuration.key_file)
    text = httpx.get(f"{configuration.host}/metrics", verify=tls, timeout=scaled(15)).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("apiserver_longrunning_requests{")
        and 'resource="pods"' in line
        and 'subresource="log"' in line
    )


def test_follow_streams_new_lines_is_capped_and_ends_cleanly(
    people: tuple[str, Callable[[], Tenant]], images: dict[str, str], admin_api: client.ApiClient
) -> None:
    base, tenant = people
    alice = tenant()
    url = make_worker(alice, images, replicas=1)
    newest = max(n for _, n in lines(alice.http.get(url).text))

    for _ in range(2):  # the second round proves the first one's slots were given back
        with ExitStack() as follows:
            seen = [follow_until_new_line(alice.http, url, newest, follows)]
            newest = seen[0][1]
            # A second follow, on the Deployment's route, holds the tenant's other slot.
            deployment = f"/api/v1/namespaces/{alice.namespace}/deployments/work/logs"
            seen.append(follow_until_new_line(alice.http, deployment, newest, follows))
            assert open_follows(base) >= PER_TENANT
            assert upstream_log_streams(admin_api) >= PER_TENANT  # one per follow's container
            refused = alice.http.get(url, params={"follow": "true"})
            assert refused.status_code == 429, refused.text
            assert 1 <= int(refused.headers["Retry-After"]) <= 120
            assert "per user" in error(refused)["message"]
            # Recent lines are no long wait: still served; and the probes answer.
            assert alice.http.get(url, params={"tail": 1}).status_code == 200
            assert httpx.get(f"{base}/readyz", timeout=scaled(15)).status_code == 200
            newest = max(item for _, item in seen)
        # The client went away: every follow ends, its upstream streams closed, its slot free.
        eventually(
            lambda: open_follows(base) == 0, within=15, what="the follows to end", interval=0.1
        )
        eventually(
            lambda: upstream_log_streams(admin_api) == 0,
            within=15,
            what="the API server to hold no log stream",
            interval=0.1,
        )


def problems_of(tenant: Tenant, path: str) -> list[dict[str, Any]] | None:
    response = tenant.http.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    found: list[dict[str, Any]] | None = body.get("problems")
    return found or None


def test_why_pods_do_not_start_in_plain_words(
    people: tuple[str, Callable[[], Tenant]], images: dict[str, str]
) -> None:
    _, tenant = people
    alice = tenant()
    ns = alice.namespace

    # An image the node cannot get.
    missing = {"name": "nope", "image": "example.invalid/nope:1"}
    assert alice.http.post(f"/api/v1/namespaces/{ns}/apps", json=missing).status_code == 201
    found = eventually(
        lambda: problems_of(alice, f"/api/v1/namespaces/{ns}/apps/nope"),
        within=60,
        what="the image-pull problem",
        interval=0.5,
    )
    [pull] = found
    assert pull["reason"] == "ImagePull", found
    assert pull["message"].startswith(
        "The node could not get the image example.invalid/nope:1 of container nope: "
    )
    assert len(pull["pods"]) == 1
    same = problems_of(alice, f"/api/v1/namespaces/{ns}/deployments/nope?include=problems")
    assert same
    assert same[0]["reason"] == "ImagePull"
    # The app's page says it too.
    page = alice.http.get(f"/namespaces/{ns}/apps/nope")
    assert page.status_code == 200
    assert "Why the pods do not run" in page.text
    assert "The node could not get the image example.invalid/nope:1" in page.text
    # Its logs: the container has not started, a 409 saying so.
    waiting = alice.http.get(f"/api/v1/namespaces/{ns}/apps/nope/logs")
    assert waiting.status_code == 409, waiting.text
    assert error(waiting)["field"] == "container"
    assert "has not started yet" in error(waiting)["message"]

    # A container that asks to run as root: Pod Security refuses its pods.
    root = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "root"},
        "spec": {
            "selector": {"matchLabels": {"app": "root"}},
            "template": {
                "metadata": {"labels": {"app": "root"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": images["web"],
                            "securityContext": {
                                "runAsUser": 0,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                        }
                    ]
                },
            },
        },
    }
    made = alice.http.post(f"/api/v1/namespaces/{ns}/deployments", json=root)
    assert made.status_code == 201, made.text
    found = eventually(
        lambda: problems_of(alice, f"/api/v1/namespaces/{ns}/deployments/root?include=problems"),
        within=60,
        what="the Pod Security problem",
        interval=0.5,
    )
    [refusal] = found
    assert refusal["reason"] == "PodSecurity", found
    assert refusal["message"].startswith(
        'Kubernetes refused to create the pods: they break the namespace\'s "restricted" Pod '
        "Security rules: "
    )
    assert "runAsUser=0" in refusal["message"]
    # The Deployment's page says it too.
    page = alice.http.get(f"/namespaces/{ns}/deployments/root/edit")
    assert page.status_code == 200
    assert "Kubernetes refused to create the pods: they break the namespace" in page.text
    # Without include, a GET stays one call and says nothing of problems.
    plain = alice.http.get(f"/api/v1/namespaces/{ns}/deployments/root").json()
    assert plain["problems"] is None
    # No pod, no log: an empty answer.
    empty = alice.http.get(f"/api/v1/namespaces/{ns}/deployments/root/logs")
    assert (empty.status_code, empty.text) == (200, "")

    # A container whose command cannot run: it exits again and again.
    crash = {"name": "crash", "image": images["worker"], "command": ["/no-such-binary"]}
    assert alice.http.post(f"/api/v1/namespaces/{ns}/deployments", json=crash).status_code == 201

    def crash_loop() -> dict[str, Any] | None:
        found = problems_of(alice, f"/api/v1/namespaces/{ns}/deployments/crash?include=problems")
        return next((p for p in found or [] if p["reason"] == "CrashLoop"), None)

    looping = eventually(crash_loop, within=90, what="the crash-loop problem", interval=0.5)
    assert re.match(
        r"Container crash keeps crashing: it exited with code \d+, and has been restarted \d+ "
        r"times",
        looping["message"],
    ), looping


def test_a_pod_on_a_node_without_a_kubelet_is_a_conflict_saying_so(
    tenants: Callable[[], Tenant],
) -> None:
    """kwok's simulated node runs pods that have no logs: a 409 that says why, not a 5xx. (Runs
    with or without a real node: the tenants' pods go to kwok's node here.)"""
    alice = tenants()
    ns = alice.namespace
    made = alice.http.post(
        f"/api/v1/namespaces/{ns}/apps", json={"name": "web", "image": "nginx:1"}
    )
    assert made.status_code == 201, made.text

    def running() -> httpx.Response | None:
        response = alice.http.get(f"/api/v1/namespaces/{ns}/apps/web/logs")
        if response.status_code == 200:  # no pod yet
            return None
        if response.status_code == 409 and error(response)["field"] == "container":
            return None  # a pod whose container kwok has not started yet: nothing to read yet
        return response

    refused = eventually(running, within=60, what="a pod of the app", interval=0.3)
    assert refused.status_code == 409, refused.text
    assert error(refused)["field"] == "pod"
    assert "serves no logs" in error(refused)["message"]
    # The app's page still renders, saying it.
    page = alice.http.get(f"/namespaces/{ns}/apps/web")
    assert page.status_code == 200
    assert "serves no logs" in page.text
