"""The processes a local plane or node starts, stopped by pid and reaped so none lingers.

Both the control plane and the real node start their components as children, record their pids
(a later ``kuberth cluster down`` may be another process, which can only signal them), and stop
them the same way: SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

#: How long a component may take to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0


class Children(dict[str, "subprocess.Popen[bytes]"]):
    """This process's own children by name; ``process_group`` signals each one's whole group
    (a component started in a session of its own, with whatever it started)."""

    def __init__(self, *, process_group: bool) -> None:
        super().__init__()
        self._group = process_group

    def stop(self, name: str, pid: int) -> bool:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT`; False when it was not running."""
        if not alive(pid):
            self.reap(name)
            return False
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while alive(pid) and time.monotonic() < deadline:
            self.reap(name)
            time.sleep(0.05)
        if alive(pid):
            self._signal(pid, signal.SIGKILL)
        self.reap(name, block=True)
        return True

    def reap(self, name: str, *, block: bool = False) -> None:
        """Collect our own child's exit status so it does not linger as a zombie."""
        process = self.get(name)
        if process is not None:
            if block:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_TIMEOUT)
            else:
                process.poll()

    def _signal(self, pid: int, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self._group:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited but not been collected yet: it does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    return True
