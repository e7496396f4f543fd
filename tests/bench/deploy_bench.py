"""Push-to-serving, end to end: ``railyard up`` with real git, Docker and its nginx edge.

Two measurements, each a median over several pushes, all on loopback:

a. The bundled example (``examples/hello``: a Dockerfile FROM busybox:stable), each
   push changing the page, so every push rebuilds the image. Timed from the moment
   ``GitRepo.commit`` returns until the edge serves the new page (polled every 20 ms).
   Two triggers: a signed GitHub push webhook sent right after the commit, and no
   webhook (the local-repository poll, every 2 s, finds the commit).

b. A prebuilt image: the manifest switches ``image:`` between two tags built once up
   front, so nothing is built or pulled. Each push alternates with the same switch done
   by hand with the docker SDK and a private nginx edge (``NginxRouter.apply`` is the
   switch, the same mechanism Railyard uses): run the container, poll its health until
   200, switch the upstream, remove the old container. The ratio controller / direct
   says what the controller's bookkeeping costs on top of the unavoidable work.

Where the time goes comes from each deployment's recorded events (``railyard
deployment ID``): ``detect`` is commit -> the deployment is recorded (as pending, by the
webhook handler or the poller that noticed the push); ``plan`` is recorded -> first step
(queue, git fetch, manifest, observe, plan); then the executor's steps (build, start,
health); ``switch→served`` runs from the route switch step to the edge answering with
the new page. Drain and the removal of the old replica come after the switch, so they
are reported beside the serving time, not in it.

Railyard runs with the product's trigger defaults (remote poll 60 s, local poll 2 s;
the e2e harness's own 1 s poll would clamp the local poll to 1 s) except for the
resync, set to 300 s so that a periodic resync never races the trigger being measured,
and a short drain. Every container, image, nginx and ``railyard up`` process made here
is removed at the end, on failure too (by this run's labels and unique names).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import os
import signal
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx

from controller.router.nginx import NginxRouter
from controller.state import EnvironmentKey, RouteTarget
from tests.bench.report import REPO_ROOT, BenchmarkFailed, Section, TableData, median, secs
from tests.e2e.harness import Railyard, running_railyard
from tests.gitrepo import ZERO_SHA, FileContent, GitRepo, free_port
from tests.support import docker_available, nginx_binary, wait_until

RUNS = 5
QUICK_RUNS = 2
EDGE_POLL_SECONDS = 0.02
HEALTH_INTERVAL_SECONDS = 0.1
"""Part b: the manifest's healthcheck interval and the direct path's probe interval."""
DRAIN_SECONDS = 0.5
SERVE_TIMEOUT = 120.0
BENCH_LABEL = "railyard-bench"
EXAMPLE = REPO_ROOT / "examples" / "hello"
RAILYARD_SETTINGS = {
    "RAILYARD_POLL_SECONDS": "60",
    "RAILYARD_LOCAL_POLL_SECONDS": "2",
    "RAILYARD_RESYNC_SECONDS": "300",
    "RAILYARD_DRAIN_SECONDS": str(DRAIN_SECONDS),
    "RAILYARD_HEALTH_TIMEOUT_SECONDS": "60",
}
PREBUILT_DOCKERFILE = """FROM busybox:stable
COPY www /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""
PHASES = ("detect", "plan", "build", "pull", "start", "health", "switch→served")
AFTER_SERVING = ("drain", "remove")


@dataclass
class Push:
    """One measured push (or one direct switch): seconds to serving, and the phases."""

    seconds: float
    phases: dict[str, float]
    trigger: str = ""
    plan: str = ""
    served_before_drain_ended: bool | None = None
    revision: str = ""


@dataclass
class Run:
    """What this run created, so that cleanup finds all of it."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    apps: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    @property
    def labels(self) -> dict[str, str]:
        return {BENCH_LABEL: self.id}

    def image(self, tag: str) -> str:
        return f"railyard-bench/web-{self.id}:{tag}"


# -- triggers and the edge ----------------------------------------------------------------


@dataclass(frozen=True)
class GitHubWebhook:
    url: str
    secret: str
    repo_url: str

    def push(self, before: str | None, after: str) -> httpx.Response:
        """Deliver a minimal GitHub push event, signed as GitHub signs it."""
        body = json.dumps(
            {
                "ref": "refs/heads/main",
                "before": before or ZERO_SHA,
                "after": after,
                "created": before is None,
                "deleted": False,
                "forced": False,
                "repository": {"name": "app", "full_name": "bench/app", "clone_url": self.repo_url},
                "pusher": {"name": "railyard-bench"},
                "sender": {"login": "railyard-bench"},
            }
        ).encode()
        digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={digest}",
        }
        return httpx.post(self.url, content=body, headers=headers, timeout=10)


def wait_served(port: int, host: str, marker: str, stop: threading.Event | None = None) -> float:
    """Poll the edge every 20 ms on a fresh connection; the wall time the page had ``marker``.

    ``stop`` ends the wait early (the caller failed and no longer needs the answer)."""
    url = f"http://127.0.0.1:{port}/"
    with httpx.Client(headers={"Host": host, "Connection": "close"}, timeout=2) as client:

        def served() -> float:
            """The wall time now if the new page is served, else 0.0 (keep waiting)."""
            if stop is not None and stop.is_set():
                raise RuntimeError(f"stopped waiting for {host} to serve {marker}")
            try:
                response = client.get(url)
            except httpx.HTTPError:
                return 0.0
            if response.status_code == 200 and marker in response.text:
                return time.time()
            return 0.0

        return wait_until(
            served,
            timeout=SERVE_TIMEOUT,
            interval=EDGE_POLL_SECONDS,
            what=f"{host} to serve {marker}",
        )


# -- the controller path ----------------------------------------------------------------


def hello_files(app: str, marker: str) -> dict[str, FileContent]:
    """examples/hello as committed by a user: its page names ``marker``; its host, the app."""
    page = (EXAMPLE / "www" / "index.html").read_text()
    manifest = (EXAMPLE / "paas.yaml").read_text()
    if "version 1" not in page or "hello.localhost" not in manifest:
        raise RuntimeError(
            "examples/hello changed: its page must say 'version 1' and its "
            "manifest route hello.localhost for this benchmark to mark pushes"
        )
    return {
        "Dockerfile": (EXAMPLE / "Dockerfile").read_text(),
        "paas.yaml": manifest.replace("hello.localhost", f"{app}.localhost"),
        "www/healthz": (EXAMPLE / "www" / "healthz").read_text(),
        "www/index.html": page.replace("version 1", f"version {marker}"),
    }


def image_manifest(app: str, image: str) -> str:
    return f"""version: 1
services:
  web:
    image: {image}
    port: 8080
    healthcheck: {{path: /healthz, interval: {int(HEALTH_INTERVAL_SECONDS * 1000)}ms}}
    routes:
      - host: {app}.localhost
"""


@dataclass
class ControllerApp:
    railyard: Railyard
    name: str
    repo: GitRepo
    webhook: GitHubWebhook

    @property
    def host(self) -> str:
        return f"{self.name}.localhost"

    def push(self, files: Mapping[str, FileContent], marker: str, *, webhook: bool) -> Push:
        before = self.repo.head()
        revision = self.repo.commit(files, f"bench {marker}")
        committed = time.time()
        if webhook:
            answer = self.webhook.push(before, revision)
            if answer.status_code != 202:
                raise AssertionError(f"webhook answered {answer.status_code}: {answer.text}")
        served = wait_served(self.railyard.edge_port, self.host, marker)
        row = self.railyard.wait_for_deployment(self.name, revision, timeout=SERVE_TIMEOUT)
        if row["status"] != "succeeded":
            raise AssertionError(f"deployment of {revision[:12]} {row['status']}: {row['error']}")
        detail = self.railyard.cli_json("deployment", row["id"])
        return timeline(detail, committed, served)


def register(
    railyard: Railyard, base: Path, name: str, files: Mapping[str, FileContent]
) -> ControllerApp:
    repo = GitRepo.create(base, name)
    repo.commit(files, "first")
    created = railyard.cli_json("apps", "add", name, "--repo", repo.url)
    webhook = GitHubWebhook(created["webhook_url"], created["webhook_secret"], repo.url)
    return ControllerApp(railyard, name, repo, webhook)


def _stamp(value: str) -> float:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _phase_of(step: str) -> str:
    for prefix, phase in (
        ("build image", "build"),
        ("pull image", "pull"),
        ("start ", "start"),
        ("wait until", "health"),
        ("switch routes", "switch"),
        ("remove all routes", "switch"),
        ("drain", "drain"),
        ("remove ", "remove"),
    ):
        if step.startswith(prefix):
            return phase
    return "other"


def timeline(detail: dict[str, Any], committed: float, served: float) -> Push:
    """Split commit -> served into phases from the deployment's event timestamps.

    The switch phase ends when the edge served the new page: nginx's new workers take
    connections before ``apply()`` has seen the old ones retire and before the
    ``route_switched`` event is written, so that event is not the moment of serving."""
    events = [(e["reason"], e["message"], _stamp(e["created_at"])) for e in detail["events"]]
    finished = _stamp(detail["finished_at"])
    steps = [(message, at) for reason, message, at in events if reason == "step_started"]
    recorded = _stamp(detail["created_at"])
    phases: dict[str, float] = {"detect": recorded - committed}
    if steps:
        phases["plan"] = steps[0][1] - recorded
    drain_end = None
    for index, (message, at) in enumerate(steps):
        end = steps[index + 1][1] if index + 1 < len(steps) else finished
        phase = _phase_of(message)
        if phase == "switch":
            phase, end = "switch→served", served
        if phase == "drain":
            drain_end = end
        phases[phase] = phases.get(phase, 0.0) + end - at
    return Push(
        seconds=served - committed,
        phases=phases,
        trigger=detail["trigger"],
        plan=detail["plan_summary"],
        served_before_drain_ended=None if drain_end is None else served <= drain_end,
        revision=detail["revision"],
    )


# -- the direct path ----------------------------------------------------------------


def _run_container(client: Any, image: str, run: Run) -> tuple[Any, int]:
    """``docker run`` with the same hardening the runtime applies, port on loopback."""
    container = client.containers.run(
        image,
        detach=True,
        name=f"railyard-bench-{run.id}-{uuid.uuid4().hex[:6]}",
        labels=run.labels,
        ports={"8080/tcp": ("127.0.0.1", None)},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        init=True,
        restart_policy={"Name": "no"},
        mem_limit=512 * 1024 * 1024,
        pids_limit=512,
    )
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
    return container, int(binding["HostPort"])


def _remove_container(container: Any) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        container.stop(timeout=10)
        container.remove(force=True)


async def _wait_healthy(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code < 400:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"direct container on {port} never became healthy")
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)


class DirectPath:
    """The prebuilt switch done by hand: run, health, ``NginxRouter.apply``, remove the old."""

    def __init__(self, client: Any, run: Run, directory: Path) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed")
        self.client = client
        self.run = run
        self.router = NginxRouter(directory, listen_port=free_port(), binary=binary)
        self.key = EnvironmentKey("bench", f"direct-{run.id}", "production")
        self.host = f"direct-{run.id}.localhost"
        self.current: Any = None

    async def start(self) -> None:
        await self.router.start()

    async def switch(self, image: str, marker: str) -> Push:
        started = time.time()
        container, port = await asyncio.to_thread(_run_container, self.client, image, self.run)
        running = time.time()
        await _wait_healthy(port)
        healthy = time.time()
        # Watch the edge while switching, as the controller's edge is watched from outside.
        stop = threading.Event()
        watching = asyncio.create_task(
            asyncio.to_thread(wait_served, self.router.listen_port, self.host, marker, stop)
        )
        upstream = (f"127.0.0.1:{port}",)
        try:
            await self.router.apply(self.key, [RouteTarget(self.host, "/", "web", upstream)])
        except BaseException:
            stop.set()
            with contextlib.suppress(RuntimeError, AssertionError):
                await watching
            await asyncio.to_thread(_remove_container, container)
            raise
        served = await watching
        if self.current is not None:
            await asyncio.to_thread(_remove_container, self.current)
        removed = time.time()
        self.current = container
        phases = {
            "start": running - started,
            "health": healthy - running,
            "switch→served": served - healthy,
            "remove": removed - served,
        }
        return Push(served - started, phases, trigger="direct", plan=image)

    async def close(self) -> None:
        if self.current is not None:
            await asyncio.to_thread(_remove_container, self.current)
        await self.router.close()


# -- setup and cleanup ----------------------------------------------------------------


def build_prebuilt(client: Any, run: Run, tag: str, marker: str) -> str:
    page = f"<!doctype html><p>prebuilt {marker}</p>\n".encode()
    files = {
        "Dockerfile": PREBUILT_DOCKERFILE.encode(),
        "www/index.html": page,
        "www/healthz": b"ok\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    image = run.image(tag)
    client.images.build(
        fileobj=io.BytesIO(buffer.getvalue()),
        custom_context=True,
        tag=image,
        labels=run.labels,
        rm=True,
        forcerm=True,
        pull=False,
    )
    return image


def cleanup(client: Any, run: Run) -> None:
    """Remove every container, network and image this run made; note what could not be."""
    selectors: list[dict[str, str]] = [{"label": f"{BENCH_LABEL}={run.id}"}]
    selectors += [{"label": f"railyard.app={app}"} for app in run.apps]
    for selector in selectors:
        for container in client.containers.list(all=True, filters=selector):
            try:
                container.remove(force=True)
            except docker.errors.APIError as exc:
                run.leftovers.append(f"container {container.name}: {exc}")
    for app in run.apps:  # environments' private networks, once their containers are gone
        for network in client.networks.list(filters={"label": f"railyard.app={app}"}):
            try:
                network.remove()
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as exc:
                run.leftovers.append(f"network {network.name}: {exc}")
    references = [f"railyard/*-{app}-*" for app in run.apps]
    images = [i for ref in references for i in client.images.list(filters={"reference": ref})]
    images += client.images.list(filters={"label": f"{BENCH_LABEL}={run.id}"})
    for image in images:
        try:
            client.images.remove(image.id, force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            run.leftovers.append(f"image {image.tags or image.id}: {exc}")


def stop_left_nginx(home: Path) -> None:
    """If ``railyard up`` had to be killed, its edge (own session) may outlive it."""
    pid_file = home / "nginx" / "nginx.pid"
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        if "nginx" in cmdline and str(home) in cmdline:
            os.kill(pid, signal.SIGQUIT)


@contextlib.contextmanager
def docker_client() -> Iterator[Any]:
    client = docker.from_env()
    try:
        yield client
    finally:
        client.close()


# -- the benchmark ----------------------------------------------------------------


def measure(runs: int, run: Run, base: Path, note: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with docker_client() as client:
        try:
            started = time.monotonic()
            images = [
                (build_prebuilt(client, run, "v1", f"one-{run.id}"), f"prebuilt one-{run.id}"),
                (build_prebuilt(client, run, "v2", f"two-{run.id}"), f"prebuilt two-{run.id}"),
            ]
            built = time.monotonic() - started
            note(f"prebuilt images {images[0][0]} and :v2 built in {built:.1f} s")
            home = base / "railyard"
            try:
                with running_railyard(home, **RAILYARD_SETTINGS) as railyard:
                    try:
                        results["a"] = _measure_example(railyard, base, run, runs, note)
                        results["b_controller"], results["b_direct"] = asyncio.run(
                            _measure_prebuilt(railyard, client, base, run, images, runs)
                        )
                    except BaseException:
                        _note_state(railyard, run, note)
                        raise
            finally:
                stop_left_nginx(home)
        finally:
            cleanup(client, run)
    return results


def _note_state(railyard: Railyard, run: Run, note: Callable[[str], None]) -> None:
    """On failure: what Railyard recorded and logged, so the failure can be diagnosed."""
    for name in run.apps:
        listing = railyard.cli("deployments", name, check=False)
        note(f"railyard deployments {name}:\n{listing.stdout}{listing.stderr}")
    note(f"railyard up's log, last lines:\n{railyard.log()[-4000:]}")


def _measure_example(
    railyard: Railyard, base: Path, run: Run, runs: int, note: Callable[[str], None]
) -> dict[str, list[Push]]:
    name = f"bench-{run.id}"
    run.apps.append(name)
    added = time.time()
    app = register(railyard, base, name, hello_files(name, f"first-{run.id}"))
    first = wait_served(railyard.edge_port, app.host, f"first-{run.id}")
    note(
        f"example app: first deployment (app added, image built) served after {first - added:.2f} s"
    )
    pushes: dict[str, list[Push]] = {"webhook": [], "poll": []}
    for index in range(runs):
        for variant in ("webhook", "poll"):  # interleaved, so drift hits both alike
            marker = f"{variant}-{index}-{uuid.uuid4().hex[:6]}"
            push = app.push(hello_files(name, marker), marker, webhook=variant == "webhook")
            pushes[variant].append(push)
    return pushes


async def _measure_prebuilt(
    railyard: Railyard, client: Any, base: Path, run: Run, images: list[tuple[str, str]], runs: int
) -> tuple[list[Push], list[Push]]:
    """Controller and direct switches alternate, so load drift on a shared machine hits
    both alike; each controller push returns only once its deployment finished."""
    name = f"benchimg-{run.id}"
    run.apps.append(name)
    files = {"paas.yaml": image_manifest(name, images[0][0])}
    app = await asyncio.to_thread(register, railyard, base, name, files)
    await asyncio.to_thread(wait_served, railyard.edge_port, app.host, images[0][1])
    direct = DirectPath(client, run, base / "direct-nginx")
    controller_pushes, direct_pushes = [], []
    await direct.start()
    try:
        await direct.switch(*images[0])  # the version being replaced
        for index in range(runs):
            image, marker = images[(index + 1) % 2]
            files = {"paas.yaml": image_manifest(name, image)}
            push = await asyncio.to_thread(app.push, files, marker, webhook=True)
            controller_pushes.append(push)
            direct_pushes.append(await direct.switch(image, marker))
    finally:
        await direct.close()
    return controller_pushes, direct_pushes


def _phase_cells(pushes: list[Push], phases: tuple[str, ...]) -> list[str]:
    cells = []
    for phase in phases:
        values = [p.phases[phase] for p in pushes if phase in p.phases]
        cells.append(secs(median(values)) if values else "-")
    return cells


def _timing_table(title: str, rows: dict[str, list[Push]], caption: str) -> TableData:
    shown = [p for p in PHASES if any(p in x.phases for v in rows.values() for x in v)]
    table = TableData(
        title,
        ("variant", "runs", "median s", "min s", "max s", *shown, "drain+remove"),
        caption=caption,
    )
    for variant, pushes in rows.items():
        seconds = [p.seconds for p in pushes]
        after = [sum(p.phases.get(k, 0.0) for k in AFTER_SERVING) for p in pushes]
        table.add(
            variant,
            len(pushes),
            secs(median(seconds)),
            secs(min(seconds)),
            secs(max(seconds)),
            *_phase_cells(pushes, tuple(shown)),
            secs(median(after)),
        )
    return table


def _extra_time(controller: list[Push], direct: list[Push]) -> str:
    """Per phase, how much longer the controller took than the direct path (medians)."""
    parts = []
    for phase in PHASES:
        mine = [p.phases[phase] for p in controller if phase in p.phases]
        theirs = [p.phases[phase] for p in direct if phase in p.phases]
        if mine and theirs:
            parts.append(f"{phase} {median(mine) - median(theirs):+.2f} s")
        elif mine:
            parts.append(f"{phase} {median(mine):+.2f} s (controller only)")
    return ", ".join(parts)


def _push_json(push: Push) -> dict[str, Any]:
    return {
        "seconds": round(push.seconds, 4),
        "phases": {k: round(v, 4) for k, v in push.phases.items()},
        "trigger": push.trigger,
        "plan": push.plan,
        "served_before_drain_ended": push.served_before_drain_ended,
        "revision": push.revision,
    }


def run(*, quick: bool = False) -> Section:
    runs = QUICK_RUNS if quick else RUNS
    section = Section(
        name="deploy",
        title="push-to-serving with railyard up, real git + Docker + nginx edge",
        parameters={
            "runs": runs,
            "edge_poll_s": EDGE_POLL_SECONDS,
            "railyard_settings": RAILYARD_SETTINGS,
            "prebuilt_health_interval_s": HEALTH_INTERVAL_SECONDS,
            "example": "examples/hello (page changed on every push)",
            "database": "SQLite, in-process broker (railyard up defaults)",
            "load_average_at_start": list(os.getloadavg()),
        },
    )
    if not docker_available():
        raise RuntimeError("Docker engine not reachable (run scripts/ensure-system.sh)")
    if nginx_binary() is None:
        raise RuntimeError("nginx is not installed")
    run_state = Run()
    with tempfile.TemporaryDirectory(prefix="railyard-deploy-bench-") as scratch:
        # Let nginx's workers drop root as they do under a normal RAILYARD_HOME.
        Path(scratch).chmod(0o755)
        try:
            found = measure(runs, run_state, Path(scratch), section.notes.append)
        except Exception as exc:
            if run_state.leftovers:
                section.notes.append(f"cleanup left: {run_state.leftovers}")
            raise BenchmarkFailed(str(exc), section.notes) from exc
        finally:
            section.parameters["load_average_at_end"] = list(os.getloadavg())
    if run_state.leftovers:
        section.findings.append(f"cleanup left: {run_state.leftovers}")
    _report(section, found)
    return section


def _report(section: Section, found: dict[str, Any]) -> None:
    example: dict[str, list[Push]] = found["a"]
    controller: list[Push] = found["b_controller"]
    direct: list[Push] = found["b_direct"]
    section.tables.append(
        _timing_table(
            "a. examples/hello: commit -> edge serves the new page (medians, seconds)",
            example,
            "detect: commit -> deployment recorded by the trigger; plan: -> first step (queue, "
            "fetch, plan); switch→served: switch step -> edge answered; drain+remove: after",
        )
    )
    section.tables.append(
        _timing_table(
            "b. prebuilt image switch: controller (webhook) vs the same steps by hand",
            {"controller": controller, "direct (SDK+nginx)": direct},
            f"direct: docker run, GET /healthz every {HEALTH_INTERVAL_SECONDS:g}s, "
            "NginxRouter.apply, remove old; controller manifest uses the same interval",
        )
    )
    all_controller = [*example["webhook"], *example["poll"], *controller]
    rebuilt = sum("build" in p.plan for p in example["webhook"] + example["poll"])
    pushes = len(example["webhook"]) + len(example["poll"])
    section.notes.append(f"example pushes that rebuilt the image: {rebuilt}/{pushes}")
    triggers = {v: sorted({p.trigger for p in ps}) for v, ps in example.items()}
    section.notes.append(
        f"recorded triggers: {triggers}; prebuilt: {sorted({p.trigger for p in controller})}"
    )
    prebuilt_plans = sorted({p.plan for p in controller})
    section.notes.append(f"prebuilt plans: {prebuilt_plans}")
    checked = [p.served_before_drain_ended for p in all_controller]
    before = sum(1 for c in checked if c)
    section.notes.append(
        f"drain ({DRAIN_SECONDS:g} s) started after the switch; the edge served the new "
        f"version before the drain ended in {before}/{len(checked)} pushes, so drain is "
        "not part of serving time"
    )
    if before != len(checked):
        section.findings.append(
            f"in {len(checked) - before} pushes the new version was served only after the "
            "drain ended: the drain delayed serving"
        )
    if rebuilt != pushes:
        section.findings.append(f"only {rebuilt} of {pushes} page changes rebuilt the image")
    controller_median, direct_median = (
        median([p.seconds for p in controller]),
        median([p.seconds for p in direct]),
    )
    ratio = controller_median / direct_median
    section.notes.append(
        f"prebuilt: controller {controller_median:.2f} s / direct {direct_median:.2f} s = "
        f"{ratio:.2f} (goal < 1.3)"
    )
    extra = _extra_time(controller, direct)
    section.notes.append(f"prebuilt, controller minus direct, by phase (medians): {extra}")
    if ratio >= 1.3:
        section.findings.append(
            f"prebuilt push-to-serving is {ratio:.2f}x the direct docker+nginx switch "
            f"({controller_median:.2f} s vs {direct_median:.2f} s), above the 1.3 goal; "
            f"by phase: {extra}"
        )
    webhook_median = median([p.seconds for p in example["webhook"]])
    poll_median = median([p.seconds for p in example["poll"]])
    section.results = {
        "example": {v: [_push_json(p) for p in ps] for v, ps in example.items()},
        "example_median_s": {"webhook": round(webhook_median, 3), "poll": round(poll_median, 3)},
        "prebuilt_controller": [_push_json(p) for p in controller],
        "prebuilt_direct": [_push_json(p) for p in direct],
        "prebuilt_median_s": {
            "controller": round(controller_median, 3),
            "direct": round(direct_median, 3),
        },
        "prebuilt_ratio": round(ratio, 3),
        "images_rebuilt": f"{rebuilt}/{pushes}",
    }
    section.summary = (
        f"hello: webhook {webhook_median:.2f} s, poll {poll_median:.2f} s; prebuilt: "
        f"controller {controller_median:.2f} s vs direct {direct_median:.2f} s = {ratio:.2f}x"
    )
