"""What every benchmark hands back, and the one way it is printed and saved.

A benchmark returns a ``Section``: its parameters, the machine's core count, the
command that reproduces it, its raw figures (for bench-results.json), the tables
to print, a one-line summary and its findings. Findings are what a reader must
not miss (writes where none were expected, growth that is not linear, a ratio
over its goal); they are printed in bold under the tables and repeated in the
summary, never folded into a footnote.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

REPO_ROOT = Path(__file__).resolve().parents[2]


class BenchmarkFailed(Exception):
    """A benchmark stopped; ``notes`` keep what it gathered to explain why."""

    def __init__(self, message: str, notes: Sequence[str]) -> None:
        super().__init__(message)
        self.notes = list(notes)


@dataclass
class TableData:
    """A table as plain data: printed with rich, stored as lists in the JSON file."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    caption: str = ""

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(tuple(str(cell) for cell in cells))


@dataclass
class Section:
    name: str
    title: str
    parameters: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)
    tables: list[TableData] = field(default_factory=list)
    summary: str = ""
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = True
    error: str | None = None
    seconds: float = 0.0
    command: str = ""
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)


def reproduce_command(name: str, *, quick: bool) -> str:
    """The command line that runs one benchmark again, from the repository root."""
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(REPO_ROOT))
    except ValueError:
        shown = str(python)
    argv = [shown, "-m", "tests.bench", "--only", name, *(["--quick"] if quick else [])]
    return shlex.join(argv)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


# -- small statistics helpers shared by the benchmarks ------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds with a sensible number of digits."""
    value = seconds * 1000
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def secs(seconds: float) -> str:
    return f"{seconds:.2f}"


# -- output -------------------------------------------------------------------------------


def print_section(section: Section, console: Console) -> None:
    console.rule(f"[bold]{section.name}[/bold]: {section.title}")
    for data in section.tables:
        table = Table(title=data.title, caption=data.caption or None, title_justify="left")
        for index, column in enumerate(data.columns):
            table.add_column(column, justify="left" if index == 0 else "right")
        for row in data.rows:
            table.add_row(*row)
        console.print(table)
    for note in section.notes:
        console.print(f"  {note}", highlight=False, markup=False)
    for finding in section.findings:
        console.print("[bold yellow]FINDING[/bold yellow] ", end="")
        console.print(finding, highlight=False, markup=False)
    if section.error:
        console.print("[bold red]FAILED[/bold red] ", end="")
        console.print(section.error, highlight=False, markup=False)
    console.print(
        f"  reproduce: {section.command}   ({section.seconds:.1f} s)", highlight=False, markup=False
    )


def print_summary(
    sections: Sequence[Section], console: Console, load_at_start: Sequence[float]
) -> None:
    loads = f"{load_at_start[0]:.2f} -> {os.getloadavg()[0]:.2f}"
    cpus = os.cpu_count()
    table = Table(
        title=f"Summary ({cpus} cores; 1-minute load average {loads})", title_justify="left"
    )
    for column in ("benchmark", "result", "findings", "time s"):
        table.add_column(column, justify="right" if column == "time s" else "left")
    for section in sections:
        result = Text(section.summary) if section.ok else Text(f"FAILED: {section.error}", "red")
        table.add_row(
            section.name,
            result,
            str(len(section.findings)) if section.findings else "-",
            f"{section.seconds:.1f}",
        )
    console.print(table)


def write_json(
    path: Path, sections: Sequence[Section], argv: Sequence[str], load_at_start: Sequence[float]
) -> None:
    document = {
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(argv),
        "machine": machine(),
        "load_average": {"start": list(load_at_start), "end": list(os.getloadavg())},
        "benchmarks": {section.name: _section_json(section) for section in sections},
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def _section_json(section: Section) -> dict[str, Any]:
    body = asdict(section)
    body["tables"] = [
        {"title": t.title, "columns": list(t.columns), "rows": [list(r) for r in t.rows]}
        for t in section.tables
    ]
    return body
