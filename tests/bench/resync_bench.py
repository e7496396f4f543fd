"""A no-op resync over many apps: how long it takes, and that it writes nothing.

The periodic resync reconciles every environment every ``RAILYARD_RESYNC_SECONDS``.
When nothing changed, that must cost reads only: no database row written, no
container touched, no route file rewritten. This benchmark wires the real
``Reconciler`` and ``Executor`` to a real SQLite database (migrated with Alembic in a
temporary directory) and the in-memory runtime, router and source; registers N apps
whose manifests run an image (so nothing is built); reconciles every production
environment once to converge; then times reconciling all of them again with the
trigger the resync uses, counting:

* database writes: every INSERT/UPDATE/DELETE the engine sends (a SQLAlchemy
  ``before_cursor_execute`` listener on the engine), with the statements;
* runtime writes: new entries in ``FakeRuntime.operations`` (every change it makes:
  build, pull, start, task, remove, networks, images);
* router writes: new entries in ``FakeRouter.applied`` and ``FakeRouter.removed``.

All three are expected to be zero; anything else is reported as a finding.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from controller.executor import Executor
from controller.health import StaticProber
from controller.locks import InProcessLocks
from controller.reconciler import Outcome, Reconciler
from controller.router.fake import FakeRouter
from controller.runtime.fake import FakeRuntime
from controller.source.fake import FakeSource
from controller.store.crypto import SecretBox
from controller.store.db import Database, migrate
from controller.store.repositories import AppRepository, EnvironmentRepository, TenantRepository
from tests.bench.report import Section, TableData, median, ms

APPS = 100
QUICK_APPS = 20
IMAGE = "registry.bench.test/railyard/web:1.0"
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


def manifest(app: str) -> str:
    return f"""version: 1
services:
  web:
    image: {IMAGE}
    port: 8080
    env:
      APP_NAME: {app}
    healthcheck: {{path: /healthz}}
    routes:
      - host: {app}.bench.localhost
"""


@dataclass
class StatementLog:
    """Every statement the engine sends while ``recording`` is set."""

    recording: bool = False
    statements: list[str] = field(default_factory=list)

    def __call__(self, *args: Any) -> None:
        # before_cursor_execute(conn, cursor, statement, parameters, context, executemany)
        if self.recording:
            self.statements.append(" ".join(str(args[2]).split()))

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s.split(" ", 1)[0].upper() in WRITE_VERBS]

    @property
    def reads(self) -> list[str]:
        return [s for s in self.statements if s.split(" ", 1)[0].upper() == "SELECT"]


@dataclass
class Bench:
    database: Database
    runtime: FakeRuntime
    router: FakeRouter
    source: FakeSource
    reconciler: Reconciler
    statements: StatementLog
    environments: list[str]


async def prepare(directory: Path, apps: int) -> Bench:
    url = f"sqlite+aiosqlite:///{directory / 'railyard.db'}"
    await migrate(url)
    database = Database(url)
    statements = StatementLog()
    event.listen(database.engine.sync_engine, "before_cursor_execute", statements)
    runtime, router, source = FakeRuntime(images=[IMAGE]), FakeRouter(), FakeSource()
    box = SecretBox(secrets.token_urlsafe(32))
    environments = []
    async with database.session() as session:
        tenant = await TenantRepository(session, None).create("bench")
        repository = AppRepository(session, tenant.id)
        for index in range(apps):
            name = f"app{index:03d}"
            url_of_repo = f"https://git.bench.test/bench/{name}.git"
            source.push(url_of_repo, {"paas.yaml": manifest(name)})
            app = await repository.create(
                name, url_of_repo, webhook_secret_encrypted=box.encrypt(secrets.token_hex(32))
            )
            production = await EnvironmentRepository(session, tenant.id).get_by_name(
                app.id, "production"
            )
            assert production is not None
            environments.append(production.id)
    executor = Executor(runtime, router, source, StaticProber())
    reconciler = Reconciler(
        database=database,
        runtime=runtime,
        router=router,
        source=source,
        executor=executor,
        locks=InProcessLocks(),
        drain_seconds=0.0,
    )
    return Bench(database, runtime, router, source, reconciler, statements, environments)


async def reconcile_all(bench: Bench, trigger: str) -> tuple[list[Outcome], list[float]]:
    outcomes, times = [], []
    for environment_id in bench.environments:
        started = time.perf_counter()
        outcomes.append(await bench.reconciler.reconcile(environment_id, trigger=trigger))
        times.append(time.perf_counter() - started)
    return outcomes, times


async def measure(apps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="railyard-resync-bench-") as scratch:
        bench = await prepare(Path(scratch), apps)
        try:
            converge_started = time.perf_counter()
            converged, _ = await reconcile_all(bench, "app created")
            converge_seconds = time.perf_counter() - converge_started
            not_converged = [o for o in converged if o.status != "succeeded"]
            if not_converged:
                raise AssertionError(f"converging failed: {not_converged[:3]}")
            operations_before = len(bench.runtime.operations)
            applied_before = len(bench.router.applied)
            removed_before = len(bench.router.removed)

            bench.statements.recording = True
            started = time.perf_counter()
            outcomes, times = await reconcile_all(bench, "resync")
            total = time.perf_counter() - started
            bench.statements.recording = False
        finally:
            await bench.database.close()
    return {
        "converge_seconds": converge_seconds,
        "total_seconds": total,
        "per_app_seconds": times,
        "outcomes": Counter(o.status for o in outcomes),
        "db_writes": bench.statements.writes,
        "db_reads": len(bench.statements.reads),
        "db_statements": len(bench.statements.statements),
        "runtime_writes": bench.runtime.operations[operations_before:],
        "router_writes": [f"apply {key}" for key, _ in bench.router.applied[applied_before:]]
        + [f"remove {key}" for key in bench.router.removed[removed_before:]],
        "containers": len(await bench.runtime.list_containers()),
    }


def run(*, quick: bool = False) -> Section:
    apps = QUICK_APPS if quick else APPS
    section = Section(
        name="resync",
        title=f"no-op resync of {apps} converged apps (real SQLite, fake runtime/router/source)",
        parameters={
            "apps": apps,
            "database": "SQLite (aiosqlite) in a temporary directory, migrated by Alembic",
            "runtime": "FakeRuntime",
            "router": "FakeRouter",
            "source": "FakeSource",
            "prober": "StaticProber (also answers the resync's liveness probes)",
            "locks": "InProcessLocks",
            "trigger": "resync",
            "order": "sequential, one environment after another",
        },
    )
    found = asyncio.run(measure(apps))
    per_app = found["per_app_seconds"]
    writes: list[str] = found["db_writes"]
    runtime_writes: list[str] = found["runtime_writes"]
    router_writes: list[str] = found["router_writes"]
    table = TableData(
        f"Reconciling all {apps} environments again, nothing changed",
        ("measure", "value"),
        caption=f"converging them first took {found['converge_seconds']:.2f} s "
        f"({found['containers']} containers)",
    )
    table.add("total", f"{found['total_seconds']:.3f} s")
    table.add("per app, median", f"{ms(median(per_app))} ms")
    table.add("per app, max", f"{ms(max(per_app))} ms")
    table.add("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(found["outcomes"].items())))
    table.add("DB statements / app", f"{found['db_statements'] / apps:.1f}")
    table.add("DB reads (SELECT) / app", f"{found['db_reads'] / apps:.1f}")
    table.add("DB writes (INSERT/UPDATE/DELETE)", len(writes))
    table.add("runtime writes (FakeRuntime.operations)", len(runtime_writes))
    table.add("router writes (apply/remove)", len(router_writes))
    section.tables.append(table)
    for what, items in (("database", writes), ("runtime", runtime_writes)):
        if items:
            kinds = Counter(_statement_kind(item) for item in items)
            listed = "; ".join(f"{count}x {kind}" for kind, count in kinds.most_common())
            section.findings.append(f"a no-op resync wrote to the {what}: {listed}")
    if router_writes:
        section.findings.append(
            f"a no-op resync wrote routes {len(router_writes)} times: {router_writes[:3]}"
        )
    section.results = {
        "total_seconds": round(found["total_seconds"], 4),
        "per_app_median_ms": round(median(per_app) * 1000, 3),
        "per_app_max_ms": round(max(per_app) * 1000, 3),
        "converge_seconds": round(found["converge_seconds"], 3),
        "outcomes": dict(found["outcomes"]),
        "db_statements": found["db_statements"],
        "db_reads": found["db_reads"],
        "db_writes": len(writes),
        "db_write_statements": sorted(set(writes)),
        "runtime_writes": runtime_writes,
        "router_writes": router_writes,
    }
    zero = not (writes or runtime_writes or router_writes)
    section.summary = (
        f"{found['total_seconds']:.2f} s for {apps} apps ({ms(median(per_app))} ms each); "
        + (
            "zero writes (DB, runtime, router)"
            if zero
            else f"WRITES: DB {len(writes)}, runtime {len(runtime_writes)}, "
            f"router {len(router_writes)}"
        )
    )
    return section


def _statement_kind(statement: str) -> str:
    """``UPDATE app SET ...`` -> ``UPDATE app``; ``start ry-...`` -> ``start``."""
    words = statement.split()
    if words and words[0].upper() in ("UPDATE", "DELETE"):
        table = words[1] if words[0].upper() == "UPDATE" else " ".join(words[1:3])
        columns = statement.split(" SET ", 1)[1].split(" WHERE ")[0] if " SET " in statement else ""
        return f"{words[0].upper()} {table} {columns}".strip()
    if words and words[0].upper() == "INSERT":
        return " ".join(words[:3])
    return words[0] if words else ""
