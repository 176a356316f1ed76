"""One way for every scenario to report: rows of figures, each against a target, as a table on the
terminal and as JSON in artifacts/bench/<scenario>.json."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.stack import percentile

ARTIFACTS = Path("artifacts") / "bench"


Statistic = Callable[[list[float]], float]


def p(q: float) -> Statistic:
    """The ``q``th percentile (nearest rank) as a statistic for ``measured``."""
    return lambda values: percentile(values, q)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@dataclass
class Row:
    """One measured figure. ``baseline`` is the same thing measured the other way in the same run;
    ``ratio`` = value / baseline. ``target`` reads like "<= 1.3" and applies to ``checked``.

    ``samples`` is how many measurements the value stands on and ``failed`` how many more were
    attempted and failed (left out of the value); likewise for the baseline. A row with a failed
    or missing sample on either side is never met, and the table says why.
    """

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    target: str | None = None
    checked: Literal["value", "ratio"] = "value"
    note: str = ""
    samples: int | None = None
    failed: int = 0
    baseline_samples: int | None = None
    baseline_failed: int = 0

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.baseline is None or self.baseline <= 0:
            return None  # a negative baseline (a lag within the watch's delivery time): no ratio
        return self.value / self.baseline

    @property
    def problems(self) -> list[str]:
        """What makes this row's figures incomplete: failed or missing samples, either side."""
        found = _problems("", self.value, self.samples, self.failed)
        if self.baseline is not None or self.baseline_samples is not None:
            found += _problems(
                "baseline ", self.baseline, self.baseline_samples, self.baseline_failed
            )
        return found

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.problems:
            return False
        figure = self.ratio if self.checked == "ratio" else self.value
        if figure is None:
            return False
        operator, _, bound = self.target.partition(" ")
        limit = float(bound)
        return figure <= limit if operator == "<=" else figure >= limit

    def cells(self) -> tuple[str, ...]:
        """The row as the table shows it."""
        ratio = self.ratio
        met = {True: "yes", False: "NO", None: ""}[self.met]
        if self.problems:
            met = f"{met or 'n/a'}: {'; '.join(self.problems)}"
        return (
            self.name,
            _figure(self.value, self.unit),
            "" if self.baseline is None else _figure(self.baseline, self.unit),
            "" if ratio is None else f"{ratio:.2f}",
            _count(self.samples, self.failed, self.baseline_samples, self.baseline_failed),
            "" if self.target is None else f"{self.checked} {self.target}",
            met,
            self.note,
        )


def measured(
    name: str,
    unit: str,
    statistic: Statistic,
    values: list[float],
    baseline: list[float] | None = None,
    *,
    failed: int = 0,
    baseline_failed: int = 0,
    target: str | None = None,
    checked: Literal["value", "ratio"] = "value",
    note: str = "",
) -> Row:
    """A row from the samples on each side: ``statistic`` of each, and how many there were.
    A side without samples has no figure (never 0)."""
    return Row(
        name,
        _summary(statistic, values),
        unit,
        None if baseline is None else _summary(statistic, baseline),
        target,
        checked,
        note,
        samples=len(values),
        failed=failed,
        baseline_samples=None if baseline is None else len(baseline),
        baseline_failed=baseline_failed,
    )


def _summary(statistic: Statistic, values: list[float]) -> float | None:
    return round(statistic(values), 3) if values else None


def _problems(side: str, value: float | None, samples: int | None, failed: int) -> list[str]:
    found = []
    if value is None or samples == 0:
        found.append(f"{side}no samples")
    if failed:
        found.append(f"{side}{failed} failed")
    return found


def _figure(value: float | None, unit: str) -> str:
    return "none" if value is None else f"{value:.4g} {unit}"


def _count(samples: int | None, failed: int, baseline: int | None, baseline_failed: int) -> str:
    """ "n" or "n +f failed", and the baseline's after a slash."""

    def side(count: int | None, bad: int) -> str:
        text = "" if count is None else str(count)
        return f"{text} +{bad} failed" if bad else text

    ours, theirs = side(samples, failed), side(baseline, baseline_failed)
    return f"{ours} / {theirs}" if theirs else ours


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

    @property
    def incomplete(self) -> list[Row]:
        """Rows with failed or missing samples."""
        return [row for row in self.rows if row.problems]

    def table(self) -> str:
        header = ("figure", "value", "baseline", "ratio", "samples", "target", "met", "note")
        lines = [header, *(row.cells() for row in self.rows)]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        rendered = [
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
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
            "rows": [
                {**asdict(row), "ratio": row.ratio, "met": row.met, "problems": row.problems}
                for row in self.rows
            ],
            "incomplete_rows": [row.name for row in self.incomplete],
            "details": self.details,
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path


def _cpus() -> int:
    return len(os.sched_getaffinity(0))
