"""Several replicas starting at once on one empty PostgreSQL database all migrate it, safely.

The replicas are processes, as in a real rollout (Alembic keeps per-process global state, so
threads would not be independent migrators); each starts migrating when the test says go, once
all have started and imported Kuberth.
"""

from __future__ import annotations

import secrets
import subprocess
import sys

from sqlalchemy import inspect, text

from kuberth.storage.database.engine import make_engine
from kuberth.storage.database.models import Base
from tests.integration.postgres import PostgresServer
from tests.timing import scaled

REPLICA = """
import sys
from kuberth.storage.database.engine import make_engine, migrate
engine = make_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrate(engine)
"""


def test_three_replicas_migrating_an_empty_database_at_once_all_succeed(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database(f"kt_{secrets.token_hex(6)}")
    replicas: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(3):
            replicas.append(
                subprocess.Popen(
                    [sys.executable, "-c", REPLICA, url],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
            )
        for replica in replicas:
            assert replica.stdout.readline() == b"ready\n"
        for replica in replicas:
            replica.stdin.write(b"go\n")
            replica.stdin.flush()
        outputs = [replica.communicate(timeout=scaled(120))[0].decode() for replica in replicas]
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
                replica.wait()
    for replica, output in zip(replicas, outputs, strict=True):
        assert replica.returncode == 0, output

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            versions = connection.scalars(text("SELECT version_num FROM alembic_version")).all()
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert len(versions) == 1  # at head, once
    assert set(Base.metadata.tables) <= tables
