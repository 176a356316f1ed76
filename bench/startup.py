"""Start-up: `kuberth serve` from spawn to its first ``/readyz`` 200, and `kuberth --help`.

``serve`` is timed with SQLite and PostgreSQL, each on a database already migrated (a restart)
and on an empty one (the first start, which runs the migrations), production settings, against
the local control plane; ``/readyz`` is polled every 10 ms. Readiness needs the database and the
API server to answer, and the lifespan to have applied the tenant ClusterRole and the admission
policies. ``--help`` is the console script's wall time. Each figure is the median of
``REPEATS`` runs after one untimed run (which warms the page cache); the baseline is the
interpreter's own start-up (``python -c pass``), for context. Each serve row notes the CPU time
the process had used when it was ready, which other load on the machine disturbs far less.

A floor for ``serve``, in the same run: the interpreter importing only the modules ``serve``
loads that are not Kuberth's (FastAPI, pydantic, SQLAlchemy, aiohttp, the Kubernetes client's
configuration, Jinja, ... and the standard library's, as listed by a process that imported
Kuberth's app and command line). What ``serve`` takes beyond it is Kuberth's: its modules (the
routes made at import), and its lifespan (the database, the cluster objects, the watches) until
/readyz.

Python's bytecode cache is on for the timed runs (written to a directory of this run's, via
PYTHONPYCACHEPREFIX, by the untimed first run), as in any installed package; an environment with
PYTHONDONTWRITEBYTECODE=1 and no cache compiles every module at every start, which the
"no bytecode cache" rows show for context.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config
from tests.integration.postgres import PostgresServer

from bench.report import Report, Row
from bench.stack import cpu_seconds, server_environment, stop
from kuberth.cluster.plane import free_port
from kuberth.services.builders.tenant import MANAGED_BY

REPEATS = 5
SERVE_TARGET = "<= 1.5"
HELP_TARGET = "<= 0.5"
POLL_EVERY = 0.01
READY_WITHIN = 60.0


def _kuberth() -> list[str]:
    """The console script next to this interpreter (what an operator runs), else ``-m``."""
    script = Path(sys.executable).with_name("kuberth")
    return [str(script)] if script.exists() else [sys.executable, "-m", "kuberth"]


def _python(pycache: Path, *, write: bool = True) -> dict[str, str]:
    """The environment with the bytecode cache in ``pycache`` (written to, or only read)."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(pycache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _wall(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _environment(
    python: dict[str, str], kubeconfig: Path, database_url: str, port: int
) -> dict[str, str]:
    return {
        **python,
        **server_environment(kubeconfig, database_url, port),
        # Never contacted at start-up; sign-in is not part of this measurement.
        "KUBERTH_GITHUB_CLIENT_ID": "bench",
        "KUBERTH_GITHUB_CLIENT_SECRET": "bench",
    }


def time_serve(
    python: dict[str, str], kubeconfig: Path, database_url: str, log: Path, cpu: list[float]
) -> float:
    """Seconds from spawning `kuberth serve` to its first /readyz 200; stops it afterwards.

    Appends the CPU seconds the process had used by then to ``cpu``: on a busy machine the wall
    time depends on what else runs, the CPU time much less.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    env = _environment(python, kubeconfig, database_url, port)
    with log.open("ab") as output, httpx.Client(timeout=2) as http:
        started = time.perf_counter()
        process = subprocess.Popen(
            [*_kuberth(), "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if http.get(url).status_code == 200:
                        elapsed = time.perf_counter() - started
                        cpu.append(round(cpu_seconds(process.pid), 3))
                        return elapsed
                if process.poll() is not None:
                    raise RuntimeError(f"kuberth serve exited with {process.returncode}; see {log}")
                if time.perf_counter() - started > READY_WITHIN:
                    raise RuntimeError(
                        f"kuberth serve not ready in {READY_WITHIN:.0f} s; see {log}"
                    )
                time.sleep(POLL_EVERY)
        finally:
            stop(process)


def _median(measure: Callable[[], float], repeats: int = REPEATS) -> tuple[float, list[float]]:
    measure()  # untimed: the page cache, the migrations of a "migrated" database
    samples = [measure() for _ in range(repeats)]
    return statistics.median(samples), [round(s, 3) for s in samples]


#: Prints the modules Kuberth's app and command line load that are not Kuberth's, one a line.
_LIST_LIBRARIES = (
    "import sys, kuberth.cli, kuberth.http.app; "
    "print(*(m for m in sys.modules if not m.startswith(('kuberth', '__main__'))), sep='\\n')"
)
#: Imports the modules named in its arguments (one that cannot be imported by that name alone,
#: an alias some package registers, is skipped) with the garbage collector off, as `serve`
#: imports its app.
_IMPORT_LIBRARIES = """
import gc, importlib, sys
gc.disable()
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


def _libraries(env: dict[str, str]) -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-c", _LIST_LIBRARIES], env=env, check=True, capture_output=True
    )
    return listed.stdout.decode().split()


def _importing(env: dict[str, str], modules: list[str], cpu: list[float]) -> Callable[[], float]:
    """Wall seconds of importing ``modules`` in a fresh interpreter; its CPU seconds to ``cpu``."""

    def measure() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = _wall([sys.executable, "-c", _IMPORT_LIBRARIES, *modules], env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 3))
        return wall

    return measure


def _helping(env: dict[str, str]) -> Callable[[], float]:
    return lambda: _wall([*_kuberth(), "--help"], env)


def _serving(
    python: dict[str, str],
    kubeconfig: Path,
    database: Callable[[], str],
    log: Path,
    cpu: list[float],
) -> Callable[[], float]:
    return lambda: time_serve(python, kubeconfig, database(), log, cpu)


@contextlib.contextmanager
def _postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server (in a directory of its own: it runs as another user)."""
    directory = Path(tempfile.mkdtemp(prefix="kuberth-bench-postgres-"))
    server = PostgresServer(directory)
    try:
        yield server.start()
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def run(kubeconfig: Path, quick: bool) -> list[Report]:
    rep = Report(scenario="startup", mode="quick" if quick else "full")
    details: dict[str, Any] = {
        "repeats": REPEATS,
        "loadavg": {"start": _loadavg()},
        # The reconcile pass at start-up (a background thread) lists these and records the ones
        # the database does not know; on a shared plane they are other runs' leftovers.
        "tenant_namespaces_in_cluster": _tenant_namespaces(kubeconfig),
    }
    directory = Path(tempfile.mkdtemp(prefix="kuberth-bench-startup-"))
    log = directory / "serve.log"
    cached = _python(directory / "pycache")
    uncached = _python(directory / "no-pycache", write=False)
    python, samples = _median(lambda: _wall([sys.executable, "-c", "pass"], cached))
    details["python -c pass"] = samples
    for label, env, target in (("", cached, HELP_TARGET), (", no bytecode cache", uncached, None)):
        value, samples = _median(_helping(env))
        details[f"kuberth --help{label}"] = samples
        rep.add(
            Row(
                f"kuberth --help{label}",
                value,
                "s",
                python,
                target,
                "value",
                note=f"median of {REPEATS}",
                samples=REPEATS,
                baseline_samples=REPEATS,
            )
        )
    modules = _libraries(cached)
    _add_timed(
        rep,
        details,
        f"importing serve's libraries alone ({len(modules)} modules)",
        lambda cpu: _importing(cached, modules, cpu),
        python,
        None,
        "; serve's floor",
    )
    try:
        with _postgres() as server:
            names = (f"fresh{i}" for i in range(REPEATS + 1))
            migrated = server.create_database("migrated")
            configurations: dict[str, Callable[[], str]] = {
                "sqlite, migrated": lambda: f"sqlite:///{directory / 'migrated.db'}",
                "sqlite, empty": lambda: f"sqlite:///{directory / secrets.token_hex(4)}.db",
                "postgresql, migrated": lambda: migrated,
                "postgresql, empty": lambda: server.create_database(next(names)),
            }
            runs: list[tuple[str, dict[str, str], Callable[[], str], str | None]] = [
                (f"serve ready, {label}", cached, database, SERVE_TARGET)
                for label, database in configurations.items()
            ]
            migrated_sqlite = configurations["sqlite, migrated"]
            runs += [
                (
                    "serve ready, sqlite, migrated, no bytecode cache",
                    uncached,
                    migrated_sqlite,
                    None,
                ),
                (
                    "serve ready, sqlite, migrated, no start-up reconcile pass",
                    {**cached, "KUBERTH_RECONCILE_INTERVAL": "0"},
                    migrated_sqlite,
                    None,
                ),
            ]
            for label, env, database, target in runs:
                _add_timed(
                    rep,
                    details,
                    label,
                    partial(_serving, env, kubeconfig, database, log),
                    python,
                    target,
                )
    except Exception:
        saved = Path("artifacts") / "bench" / "startup-serve.log"
        saved.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            shutil.copy(log, saved)
        raise
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    details["loadavg"]["end"] = _loadavg()
    details["note"] = "baseline: the interpreter's own start-up (python -c pass), for context"
    rep.details = details
    return [rep]


def _add_timed(
    rep: Report,
    details: dict[str, Any],
    label: str,
    measuring: Callable[[list[float]], Callable[[], float]],
    python: float,
    target: str | None,
    what: str = "",
) -> None:
    """The median wall time of a measurement (made by ``measuring`` with the list its runs add
    their CPU seconds to) as a row beside ``python -c pass``; every run's figures in ``details``."""
    cpu: list[float] = []
    value, samples = _median(measuring(cpu))
    median_cpu = statistics.median(cpu[1:])  # the first, untimed run's is left out too
    details[label] = {"wall_s": samples, "cpu_s": cpu[1:], "cpu_median_s": median_cpu}
    rep.add(
        Row(
            label,
            value,
            "s",
            python,
            target,
            "value",
            note=f"median of {REPEATS}; CPU {median_cpu:.2f} s{what}",
            samples=REPEATS,
            baseline_samples=REPEATS,
        )
    )


def _tenant_namespaces(kubeconfig: Path) -> int:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        str(kubeconfig)
    )
    try:
        found = client.CoreV1Api(api).list_namespace(label_selector=f"{MANAGED_BY}=kuberth")
        return len(found.items)
    finally:
        api.close()  # type: ignore[no-untyped-call]


def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
