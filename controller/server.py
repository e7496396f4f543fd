"""The composition root of ``railyard up``: everything in one process.

    API + webhooks (uvicorn)   poller, resync, engine events   worker (Dramatiq)
                 \\                  (asyncio tasks)               /
                  +----- database ----- queue ----- runtime, router (nginx edge)

Embedded defaults: SQLite under RAILYARD_HOME, an in-process broker and worker, and
Railyard's own nginx on the edge port. Set RAILYARD_DATABASE_URL / RAILYARD_REDIS_URL
to use PostgreSQL and Redis; then ``railyard worker`` adds worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import dramatiq
import uvicorn
from fastapi import FastAPI

from controller.api.app import create_app
from controller.api.bootstrap import bootstrap
from controller.credentials import RepositoryCredentials
from controller.domain_routes import make_domain_router
from controller.engine_events import EngineEvents
from controller.executor import Executor
from controller.health import HttpProber
from controller.locks import InProcessLocks
from controller.reconciler import Reconciler
from controller.router import make_router
from controller.router.base import Router
from controller.runtime import make_runtime
from controller.runtime.base import Runtime
from controller.secret_routes import make_credentials_router, make_secret_router
from controller.settings import Settings, load_settings
from controller.source import make_source
from controller.status import PreviewPlan, make_status_router
from controller.store.crypto import SecretBox
from controller.store.db import Database, migrate
from controller.store.deployments import DeploymentRepository
from controller.store.models import DeploymentStatus, utcnow
from controller.tasks.actors import DramatiqQueue, register_actors
from controller.tasks.broker import make_broker
from controller.tasks.context import WorkerContext
from controller.triggers import Triggers
from controller.watchers import DirectoryWatchers
from controller.wiring import StoreWebhookBackend
from webhook.router import make_webhook_router

log = logging.getLogger("railyard")

WORKER_THREADS = 4


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM once it has stopped serving, which would end the
    process before Railyard stops its worker and its edge. Here a signal only asks the
    server to exit; ``serve()`` then shuts everything down in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


@dataclass
class Services:
    """Everything ``up`` starts, so it can stop it in reverse order."""

    database: Database
    broker: dramatiq.Broker
    worker: dramatiq.Worker
    context: WorkerContext
    router: Router
    runtime: Runtime
    queue: DramatiqQueue
    preview: PreviewPlan


def build_api(settings: Settings, services: Services) -> FastAPI:
    app = create_app(
        settings,
        database=services.database,
        queue=services.queue,
        extra_routers=[
            make_status_router(
                services.runtime,
                services.router,
                services.preview,
                instance=settings.instance_id(),
            ),
            make_secret_router(),
            make_credentials_router(),
            make_domain_router(),
            make_webhook_router(),
        ],
    )
    app.state.webhook_backend = StoreWebhookBackend(
        services.database, SecretBox(settings.signing_key()), services.queue
    )
    return app


async def start_services(settings: Settings) -> Services:
    settings.home.mkdir(parents=True, exist_ok=True)
    await migrate(settings.resolved_database_url)
    database = Database(settings.resolved_database_url)
    broker = make_broker(settings)
    context = WorkerContext(settings)
    actors = register_actors(broker, context)
    router = make_router(settings)
    await router.start()
    worker = dramatiq.Worker(broker, worker_threads=WORKER_THREADS)
    worker.start()
    runtime = make_runtime(settings)
    credentials = RepositoryCredentials()
    source = make_source(settings, credentials)
    dry_run = Reconciler(
        database=database,
        runtime=runtime,
        router=router,
        source=source,
        executor=Executor(runtime, router, source, HttpProber()),
        locks=InProcessLocks(),
        base_domain=settings.base_domain,
        drain_seconds=settings.drain_seconds,
        instance=settings.instance_id(),
        secret_box=SecretBox(settings.signing_key()),
        credentials=credentials,
    )
    return Services(
        database=database,
        broker=broker,
        worker=worker,
        context=context,
        router=router,
        runtime=runtime,
        queue=DramatiqQueue(actors),
        preview=dry_run.preview,
    )


async def stop_services(services: Services) -> None:
    await asyncio.to_thread(services.worker.stop)
    services.broker.close()
    await services.router.close()
    await services.runtime.close()
    await services.database.close()


async def serve(settings: Settings, *, demo: bool = False) -> None:
    services = await start_services(settings)
    token = await bootstrap(services.database, settings, utcnow())
    app = build_api(settings, services)
    server = _Server(
        uvicorn.Config(
            app, host=settings.api_host, port=settings.api_port, log_level="warning", lifespan="on"
        )
    )
    poll_credentials = RepositoryCredentials()
    triggers = Triggers(
        services.database,
        make_source(settings, poll_credentials),
        services.queue,
        poll_seconds=settings.poll_seconds,
        local_poll_seconds=settings.local_poll_seconds,
        resync_seconds=settings.resync_seconds,
        credentials=poll_credentials,
        secret_box=SecretBox(settings.signing_key()),
    )
    stop = asyncio.Event()
    watchers = DirectoryWatchers(services.database, services.queue)
    # A dead replica is repaired within seconds rather than at the next resync.
    engine_events = EngineEvents(
        services.database,
        services.runtime,
        services.queue,
        instance=settings.instance_id(),
        max_gap_seconds=settings.resync_seconds,
    )
    background = [
        asyncio.create_task(triggers.run(stop), name="triggers"),
        asyncio.create_task(watchers.run(stop), name="watchers"),
        asyncio.create_task(engine_events.run(stop), name="engine events"),
    ]
    try:
        serving = asyncio.create_task(server.serve(), name="api")
        # uvicorn exposes readiness only as a flag, so poll it until the socket is bound.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if serving.done():
            await serving
            return
        _announce(settings, token)
        if demo:
            background.append(asyncio.create_task(_demo(settings, services), name="demo"))
        await serving
    finally:
        stop.set()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        log.info("stopping: worker, edge, database")
        await stop_services(services)
        log.info("stopped")


def _announce(settings: Settings, token: str | None) -> None:
    token_file = (settings.home / "token").resolve()
    print(f"Railyard API      {settings.api_url}   (token in {token_file})", flush=True)
    print(
        f"Edge              http://{settings.edge_host}:{settings.edge_port}  ({settings.router})",
        flush=True,
    )
    print(f"Database          {_redact(settings.resolved_database_url)}", flush=True)
    print(f"Queue             {'Redis' if settings.redis_url else 'in-process'}", flush=True)
    if token:
        print(f"New API token written to {token_file}", flush=True)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


async def _demo(settings: Settings, services: Services) -> None:
    from controller.demo import register_demo

    app, environment = await register_demo(services.database, settings, services.queue)
    print(f"Demo app '{app.name}' registered from {app.repo_url}; deploying...", flush=True)
    deadline = asyncio.get_running_loop().time() + 300
    while asyncio.get_running_loop().time() < deadline:
        async with services.database.session() as session:
            latest = await DeploymentRepository(session, None).list_for_environment(
                environment.id, limit=1
            )
        if latest and DeploymentStatus(latest[0].status).final:
            deployment = latest[0]
            if deployment.status == DeploymentStatus.SUCCEEDED.value:
                url = f"http://{settings.edge_host}:{settings.edge_port}/"
                print(
                    f"\nhello is live: curl -H 'Host: hello.{settings.base_domain}' {url}\n"
                    f"   (or open http://hello.{settings.base_domain}:{settings.edge_port}/ )\n"
                    "Try: railyard status hello | railyard deployments hello   (Ctrl-C stops)",
                    flush=True,
                )
            else:
                print(f"demo deployment {deployment.status}: {deployment.error}", flush=True)
            return
        await asyncio.sleep(0.5)
    print("demo deployment did not finish within 5 minutes: railyard deployments hello", flush=True)


def run(*, demo: bool = False) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("dramatiq").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(serve(load_settings(), demo=demo))


def run_worker() -> None:
    """A worker process consuming from Redis (no API, no edge, no triggers)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings()
    if not settings.redis_url:
        raise SystemExit("railyard worker needs RAILYARD_REDIS_URL (embedded mode runs its own)")
    broker = make_broker(settings)
    register_actors(broker, WorkerContext(settings))
    worker = dramatiq.Worker(broker, worker_threads=WORKER_THREADS)
    worker.start()
    stopped = asyncio.Event()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()

    try:
        asyncio.run(wait())
    finally:
        worker.stop()
        broker.close()
