"""One way for every scenario to report: rows of figures, each against a target, as a table on the
terminal and as JSON in artifacts/bench/<scenario>.json."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

ARTIFACTS = Path("artifacts") / "bench"


@dataclass
class Row:
    """One measured figure. ``baseline`` is the same thing measured the other way in the same run;
    ``ratio`` = value / baseline. ``target`` reads like "<= 1.3" and applies to ``checked``."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str | None = None
    checked: Literal["value", "ratio"] = "value"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        figure = self.ratio if self.checked == "ratio" else self.value
        if figure is None:
            return None
        operator, _, bound = self.target.partition(" ")
        limit = float(bound)
        return figure <= limit if operator == "<=" else figure >= limit


@dataclass
class Report:
    scenario: str
    mode: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    @property
    def all_met(self) -> bool:
        return all(row.met is not False for row in self.rows)

    def table(self) -> str:
        header = ("figure", "value", "baseline", "ratio", "target", "met")
        lines = [header]
        for row in self.rows:
            ratio = row.ratio
            lines.append(
                (
                    row.name,
                    f"{row.value:.4g} {row.unit}",
                    "" if row.baseline is None else f"{row.baseline:.4g} {row.unit}",
                    "" if ratio is None else f"{ratio:.2f}",
                    "" if row.target is None else f"{row.checked} {row.target}",
                    {True: "yes", False: "NO", None: ""}[row.met],
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        rendered = [
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
            for line in lines
        ]
        rendered.insert(1, "  ".join("-" * width for width in widths))
        return f"== {self.scenario} ({self.mode}) ==\n" + "\n".join(rendered)

    def write(self) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.scenario}.json"
        document = {
            "scenario": self.scenario,
            "mode": self.mode,
            "machine": {"cpus": _cpus(), "python": platform.python_version()},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "all_met": self.all_met,
            "rows": [{**asdict(row), "ratio": row.ratio, "met": row.met} for row in self.rows],
            "details": self.details,
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
