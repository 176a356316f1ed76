"""`make bench`: every scenario against one local control plane, each figure beside its baseline.

    python -m bench                  # quick: a few minutes
    python -m bench --full           # the sizes the targets are stated for (10,000 tenants...)
    python -m bench --only overhead  # one or more scenarios by name

Each scenario module has ``run(kubeconfig, quick) -> list[Report]``; tables go to the terminal,
JSON to artifacts/bench/. Missed targets are reported, not failed: this is not a test.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Protocol

from bench.report import ARTIFACTS, Report
from bench.stack import Cleanup, control_plane, own_plane, say

#: Scale last: it leaves the most namespaces behind for the namespace controller to delete, and
#: the scenarios after it would be timed while that work loads the machine.
SCENARIOS = ("overhead", "framework", "deletion", "signup", "startup", "starvation", "scale")


class Scenario(Protocol):
    def run(self, kubeconfig: Path, quick: bool) -> list[Report]: ...


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (slow)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args()
    quick = not args.full
    reports: list[Report] = []
    crashed: list[str] = []
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with control_plane() as kubeconfig:
        for name in args.only:
            module: Scenario = importlib.import_module(f"bench.{name}")
            say(f"-- {name} ({'quick' if quick else 'full'})")
            Cleanup.wait = not (own_plane() and name == args.only[-1])
            started = time.monotonic()
            try:
                for report in module.run(kubeconfig, quick):
                    report.details["seconds"] = round(time.monotonic() - started, 1)
                    print(report.table(), flush=True)
                    say(f"wrote {report.write()}")
                    reports.append(report)
            except Exception:  # one broken scenario must not hide the others
                traceback.print_exc()
                crashed.append(name)
    missed = [f"{r.scenario}: {row.name}" for r in reports for row in r.rows if row.met is False]
    incomplete = [
        f"{r.scenario}: {row.name} ({'; '.join(row.problems)})"
        for r in reports
        for row in r.incomplete
    ]
    print(f"\n{len(reports)} reports in {ARTIFACTS}/; targets missed: {len(missed)}")
    for line in missed:
        print(f"  missed  {line}")
    print(f"rows with failed or missing samples: {len(incomplete)}")
    for line in incomplete:
        print(f"  incomplete  {line}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if crashed:
        print(f"scenarios that failed to run: {', '.join(crashed)}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
