"""``python -m tests.bench``: run the benchmarks, print a table each and a summary, save JSON.

    python -m tests.bench                      # all of them (a few minutes on 2 cores)
    python -m tests.bench --only plan --quick  # one, with small counts
    python -m tests.bench --json out.json      # figures to out.json (default bench-results.json)

Benchmarks are not part of ``make test``: they take minutes, need Docker and nginx
(``deploy``), and their figures depend on the machine. A benchmark that fails is
reported as failed (with the error) and the others still run; the exit status is 1
then, or when a benchmark produced findings and ``--strict`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from tests.bench import deploy_bench, plan_bench, resync_bench, webhook_wrk
from tests.bench import webhook_bench as webhook_module
from tests.bench.report import (
    BenchmarkFailed,
    Section,
    TableData,
    print_section,
    print_summary,
    reproduce_command,
    write_json,
)

WEBHOOK_REQUESTS = 3000
QUICK_WEBHOOK_REQUESTS = 500
WEBHOOK_CONCURRENCY = 32


def webhook(*, quick: bool = False) -> Section:
    """webhook_bench's own measurement, shown in the same form as the others."""
    requests = QUICK_WEBHOOK_REQUESTS if quick else WEBHOOK_REQUESTS
    report = webhook_module.run(requests=requests, concurrency=WEBHOOK_CONCURRENCY)
    table = TableData(
        f"{report['benchmark']}\n{report['body_bytes']} B bodies, "
        f"{report['concurrency']} in flight",
        ("endpoint", "requests", "failed", "req/s", "p50 ms", "p99 ms", "srv CPU", "cli CPU"),
        caption="CPU columns: ms of process CPU per request (server: uvicorn; client: httpx)",
    )
    for name, row in report["results"].items():
        table.add(
            name,
            row["requests"],
            row["failures"],
            f"{row['requests_per_second']:.0f}",
            f"{row['p50_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            row.get("server_cpu_ms_per_request", "n/a"),
            row["client_cpu_ms_per_request"],
        )
    bare, hook = report["results"]["bare"], report["results"]["webhook"]
    section = Section(
        name="webhook",
        title="verified GitHub push deliveries vs a bare FastAPI endpoint (1 uvicorn worker)",
        parameters={
            "requests": requests,
            "concurrency": report["concurrency"],
            "rounds": report["rounds"],
            "body_bytes": report["body_bytes"],
        },
        results=report,
        tables=[table],
    )
    seconds = 3 if quick else 10
    # 8 connections: a busy forge's steady load, where the latency goal applies;
    # 32: saturation, where p99 is mostly queueing.
    measured = webhook_wrk.run(seconds=seconds, connections=8)
    saturated = webhook_wrk.run(seconds=seconds, connections=32)
    if measured is None or saturated is None:
        section.notes.append("wrk is not installed: the C load generator figures are missing")
    else:
        wrk_table = TableData(
            "the same endpoints driven by wrk (C load generator), 1 thread",
            ("endpoint", "connections", "requests", "non-2xx", "req/s", "p50 ms", "p99 ms"),
        )
        for connections, run in ((8, measured), (32, saturated)):
            for name, row in run["results"].items():
                wrk_table.add(
                    name,
                    connections,
                    row["requests"],
                    row["non_2xx"],
                    f"{row['requests_per_second']:.0f}",
                    f"{row['p50_ms']:.2f}",
                    f"{row['p99_ms']:.2f}",
                )
        section.tables.append(wrk_table)
        report["wrk"] = {"8": measured, "32": saturated}
        fast = measured["results"]["webhook"]
        goal = fast["requests_per_second"] >= 1000 and fast["p99_ms"] < 50
        section.notes.append(
            f"wrk, 8 connections: webhook {fast['requests_per_second']:.0f} req/s, p99 "
            f"{fast['p99_ms']} ms (goal >= 1000 req/s and p99 < 50 ms: "
            f"{'met' if goal else 'NOT met'})"
        )
        if not goal:
            section.findings.append("webhook throughput goal not met under wrk")
    failures = bare["failures"] + hook["failures"]
    if failures:
        section.findings.append(f"{failures} requests did not get the expected status")
    cost = hook.get("server_cpu_ms_per_request")
    base = bare.get("server_cpu_ms_per_request")
    extra = f"; server CPU {cost} vs {base} ms/request" if cost is not None else ""
    section.summary = (
        f"httpx client: webhook {hook['requests_per_second']:.0f} req/s vs "
        f"bare {bare['requests_per_second']:.0f} req/s{extra}"
    )
    if measured is not None:
        fast, plain = measured["results"]["webhook"], measured["results"]["bare"]
        section.summary = (
            f"wrk: webhook {fast['requests_per_second']:.0f} req/s (p99 {fast['p99_ms']} ms) "
            f"vs bare {plain['requests_per_second']:.0f} req/s; " + section.summary
        )
    return section


BENCHMARKS: dict[str, Callable[..., Section]] = {
    "plan": plan_bench.run,
    "resync": resync_bench.run,
    "deploy": deploy_bench.run,
    "webhook": webhook,
}


def run_one(name: str, *, quick: bool) -> Section:
    started = time.monotonic()
    try:
        section = BENCHMARKS[name](quick=quick)
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        section = Section(name=name, title="failed", parameters={"quick": quick})
        section.ok = False
        cause = exc.__cause__ if isinstance(exc, BenchmarkFailed) and exc.__cause__ else exc
        section.error = f"{type(cause).__name__}: {cause}"
        section.notes.append(traceback.format_exc())
        if isinstance(exc, BenchmarkFailed):
            section.notes.extend(exc.notes)
    section.parameters.setdefault("quick", quick)
    section.seconds = time.monotonic() - started
    section.command = reproduce_command(name, quick=quick)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only this (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--strict", action="store_true", help="exit 1 when there are findings")
    arguments = sys.argv[1:] if argv is None else argv
    options = parser.parse_args(arguments)
    # Wide tables stay readable when the output goes to a file or a pipe.
    console = Console() if sys.stdout.isatty() else Console(width=160)
    names = options.only or list(BENCHMARKS)
    load_at_start = os.getloadavg()
    sections = []
    for name in names:
        console.print(f"[dim]running {name}...[/dim]")
        section = run_one(name, quick=options.quick)
        print_section(section, console)
        sections.append(section)
    console.rule()
    print_summary(sections, console, load_at_start)
    argv = [sys.executable, "-m", "tests.bench", *arguments]
    write_json(options.json, sections, argv, load_at_start)
    console.print(f"figures written to {options.json}")
    failed = any(not s.ok for s in sections)
    findings = any(s.findings for s in sections)
    return 1 if failed or (options.strict and findings) else 0


if __name__ == "__main__":
    raise SystemExit(main())
