"""Drive Railyard as a user does: ``railyard up`` in a subprocess, the CLI, git pushes, curl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.gitrepo import free_port
from tests.support import wait_until

RAILYARD = str(Path(sys.executable).parent / "railyard")

INSTANCES: set[str] = set()
"""Installation ids of every Railyard this test run started (its leak check looks at their
containers only: other runs on the same engine are none of its business)."""


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 30 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def kill_hard(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Railyard:
    home: Path
    env: dict[str, str]
    api_port: int
    edge_port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_path = self.home / "railyard.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [RAILYARD, "up"], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.home
        )
        wait_until(self._ready, timeout=60, what=f"railyard up to answer (log: {self.log_path})")
        INSTANCES.add((self.home / "instance").read_text().strip())

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"railyard up exited early:\n{self.log()}")
        try:
            return httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        terminate(self.process)

    def kill(self) -> None:
        """kill -9 of `railyard up`: API, worker and all, with no clean-up of any kind."""
        kill_hard(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [RAILYARD, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"railyard {' '.join(args)} failed:\n{result.stderr}{result.stdout}"
            )
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def edge(self, host: str, path: str = "/") -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.edge_port}{path}", headers={"Host": host}, timeout=5
        )

    def edge_text(self, host: str, path: str = "/") -> str | None:
        try:
            response = self.edge(host, path)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == 200 else None

    def deployments(self, app: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.cli_json("deployments", app)
        return rows

    def wait_for_deployment(
        self, app: str, revision: str, *, timeout: float = 90
    ) -> dict[str, Any]:
        """The deployment of ``revision`` once it reached a final status."""

        def finished() -> dict[str, Any] | None:
            for row in self.deployments(app):
                if row["revision"] == revision and row["status"] not in ("pending", "running"):
                    return row
            return None

        return wait_until(
            finished, timeout=timeout, interval=0.3, what=f"deployment of {revision[:12]}"
        )


def railyard_env(home: Path, api_port: int, edge_port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAILYARD_")}
    env.update(
        RAILYARD_HOME=str(home),
        RAILYARD_API_PORT=str(api_port),
        RAILYARD_EDGE_PORT=str(edge_port),
        RAILYARD_API_URL=f"http://127.0.0.1:{api_port}",
        RAILYARD_POLL_SECONDS="1",
        RAILYARD_RESYNC_SECONDS="5",
        RAILYARD_HEALTH_TIMEOUT_SECONDS="6",
        RAILYARD_DRAIN_SECONDS="1",
    )
    env.update(extra)
    return env


@dataclass
class Worker:
    """One `railyard worker` process beside `railyard up` (Redis mode), logging to
    ``worker-<number>.log`` in Railyard's home."""

    railyard: Railyard
    number: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.railyard.home / f"worker-{self.number}.log"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [RAILYARD, "worker"],
            env=self.railyard.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.railyard.home,
        )

    def kill(self) -> None:
        """kill -9: no clean-up of any kind runs."""
        kill_hard(self.process)

    def stop(self) -> None:
        terminate(self.process)


@contextmanager
def running_railyard(home: Path, *, workers: int = 0, **extra: str) -> Iterator[Railyard]:
    """`railyard up`, plus ``workers`` extra `railyard worker` processes (Redis mode)."""
    api_port, edge_port = free_port(), free_port()
    railyard = Railyard(home, railyard_env(home, api_port, edge_port, **extra), api_port, edge_port)
    railyard.start()
    try:
        for number in range(workers):
            worker = Worker(railyard, number)
            worker.start()
            railyard.workers.append(worker)
        yield railyard
    finally:
        for worker in railyard.workers:
            worker.stop()
        railyard.stop()


@dataclass
class RequestLoop:
    """Steady requests through the edge from a thread, bounded in count and time."""

    railyard: Railyard
    host: str
    max_requests: int = 20_000
    max_seconds: float = 90.0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    bodies: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RequestLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        deadline = threading.Event()
        timer = threading.Timer(self.max_seconds, deadline.set)
        timer.start()
        url = f"http://127.0.0.1:{self.railyard.edge_port}/"
        with httpx.Client(headers={"Host": self.host}, timeout=5) as client:
            for _ in range(self.max_requests):
                if self._stop.is_set() or deadline.is_set():
                    break
                try:
                    response = client.get(url)
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code == 200:
                    self.ok += 1
                    self.bodies.add(response.text.strip())
                else:
                    self.failures.append(f"HTTP {response.status_code}: {response.text[:80]}")
        timer.cancel()
