"""A private PostgreSQL server for the tests, from the Debian package's binaries."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from kuberth.cluster.plane import free_port
from tests.timing import scaled


class PostgresServer:
    def __init__(self, directory: Path) -> None:
        found = sorted(str(p) for p in Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        initdb = found[-1] if found else shutil.which("initdb")
        if initdb is None:
            raise RuntimeError(
                "PostgreSQL is not installed: `apt-get install postgresql` (make system-deps)"
            )
        self.bin = Path(initdb).parent
        self.directory = directory
        self.port = free_port()
        # PostgreSQL refuses to run as root; run it as the package's postgres user then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *argv: str) -> None:
        result = subprocess.run([*self._as, *argv], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}")

    def start(self) -> PostgresServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        self._run(
            str(self.bin / "initdb"), "-D", str(data), "-U", "kuberth", "--auth=trust", "-E", "UTF8"
        )
        return self.resume()

    def resume(self) -> PostgresServer:
        """Start the server on its existing data (after :meth:`stop`).

        A server that does not get ready in time is stopped again: `pg_ctl -w` gives up waiting
        but leaves the postmaster running.
        """
        data = self.directory / "data"
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        try:
            self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(self.directory / "log"),
                "-t",
                str(round(scaled(60))),
                "-w",
                "start",
            )
        except RuntimeError:
            self._kill()
            raise
        return self

    def _kill(self) -> None:
        """Whatever runs from this data directory, gone (its pid is postmaster.pid's first line)."""
        pid_file = self.directory / "data" / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server. `immediate` loses the last commits (fsync is off for speed), which is
        fine for a throwaway server; `fast` shuts down cleanly, as an outage test wants."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "stop")

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=kuberth dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://kuberth@127.0.0.1:{self.port}/{name}"
