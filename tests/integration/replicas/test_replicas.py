"""Two `kuberth serve` replicas on one PostgreSQL database and one cluster, no sticky sessions.

Requests are sent to one replica or the other on purpose (a stricter test than a load balancer's
choice): a sign-in started on one ends on the other, and a session or a token from one works on
the other. Racing first sign-ins through both make one user and one namespace. Of the two, one
holds the reconciler's Lease and reconciles; killed with SIGKILL, the other takes over within the
lease duration and a renew interval and runs its pass; stopped with SIGTERM, the replica finishes
its in-flight request, exits 0 and hands the Lease back at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from sqlalchemy import text

from kuberth.cluster.plane import free_port
from kuberth.devtools.github import StandInServer
from kuberth.services.builders.tenant import BASELINE_NAME, OWNER_ID
from kuberth.services.leader import RECONCILER_LEASE
from kuberth.storage.database.engine import make_engine, migrate
from tests.integration.objects import complete_rollout
from tests.integration.postgres import PostgresServer
from tests.integration.processes import (
    KuberthProcess,
    metric,
    rollout_wait_in_flight,
    serve_environment,
)
from tests.integration.signin import CSRF_HEADER, authorize, csrf_token, sign_in
from tests.integration.watching import wait_deleted, wait_until
from tests.timing import eventually, scaled

#: Short, to keep the failover test short, yet with room for renewals on a busy machine (a
#: missed renewal would hand the Lease over with no failure at all); scaled with the suite.
LEASE_DURATION = round(scaled(6))
RENEW_INTERVAL = LEASE_DURATION / 4


@dataclass
class Replicas:
    a: KuberthProcess
    b: KuberthProcess
    database_url: str
    #: Kuberth's own namespace, where the Lease is: this test's, so no other Kuberth on the
    #: shared cluster competes for it.
    namespace: str

    def __iter__(self) -> Iterator[KuberthProcess]:
        return iter((self.a, self.b))


@pytest.fixture
def replicas(
    kubeconfig: Path,
    github: StandInServer,
    postgres: PostgresServer,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Replicas]:
    database_url = postgres.create_database(f"kt_{secrets.token_hex(6)}")
    secret_key = secrets.token_urlsafe(32)
    ports = free_port(), free_port()
    # Both behind one public address, as behind a load balancer: the OAuth redirect URI is it.
    public_url = f"http://127.0.0.1:{ports[0]}"
    a, b = (
        KuberthProcess(
            serve_environment(
                port=port,
                kubeconfig=kubeconfig,
                github=github,
                database_url=database_url,
                secret_key=secret_key,
                public_url=public_url,
                kuberth_namespace=namespace,
                lease_duration=str(LEASE_DURATION),
                lease_renew_interval=str(RENEW_INTERVAL),
                reconcile_interval="3600",  # the pass on taking the Lease, then no more here
            ),
            tmp_path / f"kuberth-{name}.log",
        )
        for name, port in zip("ab", ports, strict=True)
    )
    # The schema first, as a deployment's migration step would: migrating under a lock is what
    # test_concurrent_migrations is about; here it would only eat into the replicas' start-up.
    engine = make_engine(database_url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    try:
        # Started together, as a rollout does; each kills its process if it does not get ready.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(KuberthProcess.start, (a, b)))
        yield Replicas(a, b, database_url, namespace)
    finally:
        for replica in (a, b):
            replica.stop()


def reconciled(replica: KuberthProcess) -> float:
    return metric(replica.url, "kuberth_reconcile_passes_total", result="ok")


def held_by(replica: KuberthProcess, identity: str) -> bool:
    """Identities are ``<host>_<pid>_<random>``."""
    return identity.split("_")[-2:-1] == [str(replica.pid)]


def leader_and_follower(
    replicas: Replicas, admin_api: client.ApiClient
) -> tuple[KuberthProcess, KuberthProcess]:
    """Once one holds the Lease and has finished its first pass: (leader, follower)."""
    leases = client.CoordinationV1Api(admin_api)
    lease = wait_until(
        leases.list_namespaced_lease,
        RECONCILER_LEASE,
        lambda lease: bool(lease.spec.holder_identity),
        namespace=replicas.namespace,
    )
    holder = lease.spec.holder_identity
    leader, follower = (
        (replicas.a, replicas.b) if held_by(replicas.a, holder) else (replicas.b, replicas.a)
    )
    assert held_by(leader, holder), holder
    wait_for_a_pass(leader)
    return leader, follower


def wait_for_a_pass(replica: KuberthProcess) -> None:
    """Until the replica has finished a reconcile pass (over every tenant of the shared cluster)."""
    # A metric, not a Kubernetes object: nothing to watch.
    eventually(lambda: reconciled(replica) >= 1, within=90, what="a reconcile pass", interval=0.2)


def test_a_sign_in_session_and_token_from_one_replica_work_on_the_other(
    replicas: Replicas, github: StandInServer, new_id: Callable[[], int]
) -> None:
    login, github_id = f"r{secrets.token_hex(4)}", new_id()
    # One cookie jar for both (cookies are not per port): the browser behind a load balancer.
    with httpx.Client(base_url=replicas.a.url, timeout=60) as browser:
        callback = authorize(browser, github, login=login, user_id=github_id)
        # The OAuth state is in the session cookie A set; B checks it and finishes the sign-in.
        finished = browser.get(f"{replicas.b.url}{callback}")
        assert finished.status_code == 302, finished.text
        for replica in replicas:
            me = browser.get(f"{replica.url}/api/v1/me")
            assert me.status_code == 200, me.text
            assert me.json()["login"] == login
        # The session's CSRF token, as a script of Kuberth's own sends it with every write.
        browser.headers[CSRF_HEADER] = csrf = csrf_token(browser)
        token = browser.post(f"{replicas.a.url}/api/v1/tokens", json={"name": "r"}).json()["token"]
        session_cookie = browser.cookies["kuberth_session"]
    bearer = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(f"{replicas.b.url}/api/v1/namespaces", headers=bearer)
    assert listed.status_code == 200, listed.text
    assert [ns["name"] for ns in listed.json()["items"]] == [login]

    # The logs of both: JSON lines, requests named by id and user, no credential anywhere. A
    # request's record is written just after its response is sent: read until it is there.
    def listed_record() -> dict[str, object] | None:
        records = [json.loads(line) for line in logs().splitlines() if line.startswith("{")]
        assert len(records) == len(logs().splitlines()), logs()[-2000:]
        return next(
            (r for r in records if r.get("request_id") == listed.headers["X-Request-ID"]), None
        )

    def logs() -> str:
        return replicas.a.log.read_text() + replicas.b.log.read_text()

    record = eventually(listed_record, within=10, what="the request's access log record")
    assert record["logger"] == "kuberth.access"
    assert record["user_id"] == github_id
    assert record["route"] == "/api/v1/namespaces"
    assert record["status"] == 200
    assert token not in logs()
    assert session_cookie not in logs()
    assert csrf not in logs()
    assert "code=" not in logs()  # OAuth codes ride in the callback's query string


def test_racing_first_sign_ins_through_both_replicas_make_one_user_and_one_namespace(
    replicas: Replicas,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    login, github_id = f"r{secrets.token_hex(4)}", new_id()
    targets = [replicas.a, replicas.b] * 5
    browsers = [httpx.Client(base_url=target.url, timeout=120) for target in targets]
    try:
        callbacks = [authorize(b, github, login=login, user_id=github_id) for b in browsers]
        start = threading.Barrier(len(browsers))

        def finish(index: int) -> int:
            start.wait()
            return browsers[index].get(callbacks[index]).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(browsers)) as pool:
            codes = list(pool.map(finish, range(len(browsers))))
        assert codes == [302] * len(browsers)
        seen = {
            tuple(n["name"] for n in b.get("/api/v1/me").json()["namespaces"]) for b in browsers
        }
    finally:
        for browser in browsers:
            browser.close()
    assert seen == {(login,)}
    owned = client.CoreV1Api(admin_api).list_namespace(label_selector=f"{OWNER_ID}={github_id}")
    assert [ns.metadata.name for ns in owned.items] == [login]
    engine = make_engine(replicas.database_url)
    try:
        with engine.connect() as connection:
            users = connection.execute(
                text("SELECT count(*) FROM users WHERE id = :id"), {"id": github_id}
            ).scalar_one()
            namespaces = (
                connection.execute(
                    text("SELECT name FROM namespaces WHERE owner_id = :id"), {"id": github_id}
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert users == 1
    assert namespaces == [login]
    # One of the ten requests created it: counted once, on whichever replica that was.
    created = sum(
        metric(r.url, "kuberth_tenant_namespaces_provisioned_total", personal="true")
        for r in replicas
    )
    assert created == 1


def test_one_replica_reconciles_and_the_other_takes_over_when_it_is_killed(
    replicas: Replicas,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    leader, follower = leader_and_follower(replicas, admin_api)
    assert metric(leader.url, "kuberth_leader", lease=RECONCILER_LEASE) == 1
    assert metric(follower.url, "kuberth_leader", lease=RECONCILER_LEASE) == 0
    assert reconciled(follower) == 0

    # A tenant loses a piece of its baseline; only a reconcile pass brings it back.
    login = f"r{secrets.token_hex(4)}"
    with httpx.Client(base_url=follower.url, timeout=60) as browser:
        assert sign_in(browser, github, login=login, user_id=new_id()).status_code == 302
    networking = client.NetworkingV1Api(admin_api)
    networking.delete_namespaced_network_policy(BASELINE_NAME, login)
    wait_deleted(
        networking.read_namespaced_network_policy,
        networking.list_namespaced_network_policy,
        BASELINE_NAME,
        namespace=login,
    )

    leader.kill()
    killed = time.monotonic()
    wait_until(
        client.CoordinationV1Api(admin_api).list_namespaced_lease,
        RECONCILER_LEASE,
        lambda lease: held_by(follower, lease.spec.holder_identity or ""),
        namespace=replicas.namespace,
    )
    failover = time.monotonic() - killed
    wait_until(
        networking.list_namespaced_network_policy, BASELINE_NAME, lambda _: True, namespace=login
    )
    repaired = time.monotonic() - killed
    print(
        f"failover: the follower held the Lease {failover:.2f}s after the leader was killed "
        f"(lease {LEASE_DURATION}s, renew every {RENEW_INTERVAL}s); its pass restored the "
        f"baseline {repaired:.2f}s after the kill"
    )
    # The killed leader's last renewal was at most a renew interval before the kill; the
    # follower tries every renew interval. Slack for the watch's own delay on a busy machine.
    assert failover < LEASE_DURATION + RENEW_INTERVAL + scaled(1)
    assert metric(follower.url, "kuberth_leader", lease=RECONCILER_LEASE) == 1
    wait_for_a_pass(follower)  # the pass that restored it, completed


def test_sigterm_finishes_the_request_in_flight_exits_0_and_hands_the_lease_over(
    replicas: Replicas,
    github: StandInServer,
    admin_api: client.ApiClient,
    new_id: Callable[[], int],
) -> None:
    leader, follower = leader_and_follower(replicas, admin_api)
    login = f"r{secrets.token_hex(4)}"
    apps = client.AppsV1Api(admin_api)
    with httpx.Client(base_url=leader.url, timeout=120) as browser:
        assert sign_in(browser, github, login=login, user_id=new_id()).status_code == 302
        # A paused Deployment never rolls out by itself (no controller touches it): the rollout
        # watch waits until the test writes the status that completes it.
        with rollout_wait_in_flight(leader.url, browser, apps, login) as waiting:
            leader.terminate()
            stopped = time.monotonic()
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{leader.url}/healthz", timeout=2)  # refused or served; no matter
            assert not waiting.done()
            assert leader.process is not None
            assert leader.process.poll() is None  # still draining
            complete_rollout(apps, login)
            finished = waiting.result(timeout=60)
    assert finished.status_code == 200, finished.text
    assert finished.json()["outcome"] == "complete"
    assert leader.process.wait(timeout=30) == 0
    exited = time.monotonic()
    print(f"SIGTERM to exit, the rollout watch in flight finishing first: {exited - stopped:.2f}s")

    # Handed back on the way out: the follower takes it as free at its next try, without
    # waiting for it to expire.
    wait_until(
        client.CoordinationV1Api(admin_api).list_namespaced_lease,
        RECONCILER_LEASE,
        lambda lease: held_by(follower, lease.spec.holder_identity or ""),
        namespace=replicas.namespace,
    )
    print(f"exit to the Lease taken over by the other replica: {time.monotonic() - exited:.2f}s")
    assert "released the lease" in leader.log.read_text()
    took = f"took the lease {replicas.namespace}/{RECONCILER_LEASE} (it was free)"
    # Written just after the Lease: a moment.
    eventually(lambda: took in follower.log.read_text(), within=10, what="the Lease taken as free")
