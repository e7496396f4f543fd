"""Routes through an nginx master that Railyard runs itself (the embedded edge).

Layout under ``directory`` (``RAILYARD_HOME/nginx``): ``nginx.conf`` (the main config,
rewritten on every start), ``conf.d/<slug>.conf`` (one file per environment, see
``config_file``), ``logs/``, ``temp/`` and ``nginx.pid``; ``nginx_config`` renders
their text. The master runs in the foreground (``-g "daemon off;"``) as a subprocess
in its own session, so a Ctrl-C meant for Railyard does not kill the edge. A master
left by an earlier run (named by the pid file, with our config path in its command
line) is adopted and reloaded.

``apply()`` renders the environment's file, writes it as a hidden candidate, runs
``nginx -t`` on a copy of the main config that includes the candidate instead of the
current file, and only then swaps it in with ``os.replace``. A rejected candidate is
deleted and ``RouterError`` carries nginx's message; the old file keeps serving.

Reload and "has taken effect": before SIGHUP we note the master's worker pids (its
children, read from ``/proc`` by ``nginx_process``). nginx starts new workers with the
new config, then tells the old ones to quit gracefully; a quitting worker closes its
listening sockets at once and retitles itself ``nginx: worker process is shutting
down`` while it finishes its in-flight requests. ``apply()`` returns when a new
worker runs and every old worker has exited or is shutting down: from then on every
new connection gets the new routes. A reload that nginx refuses (an ``[emerg]`` in
the error log, or no new workers before the deadline) restores the previous file and
raises ``RouterError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from controller.errors import ConflictError, RouterError
from controller.router import config_file
from controller.router.nginx_config import render_environment, render_main_config
from controller.router.nginx_process import (
    accepts_connections,
    emergencies_since,
    is_alive,
    is_serving,
    nginx_master,
    read_pid,
    worker_titles,
    worker_user,
)
from controller.state import EnvironmentKey, RouteTarget

__all__ = ["SUFFIX", "NginxRouter", "render_environment", "render_main_config"]

log = logging.getLogger(__name__)

SUFFIX = ".conf"
_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ", re.MULTILINE)


class NginxRouter:
    def __init__(
        self,
        directory: Path,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 8080,
        binary: str = "nginx",
        timeout: float = 30.0,
    ) -> None:
        self.directory = directory.absolute()
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.binary = binary
        self.timeout = timeout
        """Deadline in seconds for start, reload and quit."""
        self.config_path = self.directory / "nginx.conf"
        self.routes_dir = self.directory / "conf.d"
        self.pid_path = self.directory / "nginx.pid"
        self.error_log = self.directory / "logs" / "error.log"
        self._lock = asyncio.Lock()
        self._process: asyncio.subprocess.Process | None = None
        self._master_pid: int | None = None
        self._started = False
        self._user = ""

    @property
    def master_pid(self) -> int | None:
        return self._master_pid

    async def start(self) -> None:
        async with self._lock:
            for sub in ("conf.d", "logs", "temp"):
                (self.directory / sub).mkdir(parents=True, exist_ok=True)
            self._user = worker_user(self.directory)
            main = render_main_config(self.directory, self._listen, [self._include_all], self._user)
            await asyncio.to_thread(config_file.write_atomic, self.config_path, main)
            try:
                await self._test(self.config_path)
            except RouterError:
                if not self._set_aside_unverified():
                    raise
                await self._test(self.config_path)
            self._started = True
            adopted = nginx_master(self.pid_path, self.config_path)
            if adopted is not None and adopted != self._master_pid:
                log.info("adopting nginx master %d left by an earlier run", adopted)
                self._master_pid, self._process = adopted, None
            if self._running():
                await self._reload()
            else:
                await self._spawn()

    async def apply(self, key: EnvironmentKey, routes: Sequence[RouteTarget]) -> None:
        config_file.check_routes(key, routes)
        path = self._path(key)
        body = render_environment(key, routes, self._listen)
        text = config_file.render(key, routes, body)
        async with self._lock:
            await self._ensure_running()
            config_file.check_owner(path, key)
            candidate = path.with_name(f".{path.name}.candidate")
            await asyncio.to_thread(config_file.write_atomic, candidate, text)
            try:
                await self._test_with(path, candidate, {r.host for r in routes})
            except BaseException:
                candidate.unlink(missing_ok=True)
                raise
            previous = path.read_text(encoding="utf-8") if path.exists() else None
            os.replace(candidate, path)
            config_file.sync_directory(self.routes_dir)
            await self._reload_or_restore(path, previous)

    async def observe(self, key: EnvironmentKey) -> list[RouteTarget]:
        return config_file.observed_routes(self._path(key), key)

    async def remove(self, key: EnvironmentKey) -> None:
        path = self._path(key)
        async with self._lock:
            if not path.exists() or config_file.owned_by_other(path, key):
                return
            previous = path.read_text(encoding="utf-8")
            await asyncio.to_thread(config_file.remove, path)
            if self._started:
                await self._ensure_running()
                await self._reload_or_restore(path, previous)

    async def environments(self) -> list[EnvironmentKey]:
        return config_file.environments(self.routes_dir, SUFFIX)

    async def close(self) -> None:
        """Graceful quit (SIGQUIT: workers finish their requests), then wait for exit."""
        async with self._lock:
            pid, self._started = self._master_pid, False
            if pid is None:
                return
            for sig, grace in ((signal.SIGQUIT, self.timeout), (signal.SIGTERM, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if await self._exited(pid, grace):
                    break
                log.warning("nginx master %d ignored %s for %.0fs", pid, sig.name, grace)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                await self._exited(pid, 5.0)
            self._master_pid = self._process = None

    # -- the master process ------------------------------------------------------

    @property
    def _listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"

    @property
    def _include_all(self) -> str:
        return str(self.routes_dir / f"*{SUFFIX}")

    def _path(self, key: EnvironmentKey) -> Path:
        return self.routes_dir / config_file.file_name(key, SUFFIX)

    def _command(self, config: Path, *extra: str) -> list[str]:
        return [self.binary, "-p", f"{self.directory}/", "-c", str(config), *extra]

    def _set_aside_unverified(self) -> list[Path]:
        """Rename route files whose header does not verify (edited by hand) to
        ``.<name>.rejected``, so that one broken file cannot keep the edge down."""
        moved = []
        for path in self.routes_dir.glob(f"*{SUFFIX}"):
            if config_file.read(path) is None:
                target = path.with_name(f".{path.name}.rejected")
                os.replace(path, target)
                log.warning("nginx rejected its config; set aside hand-edited %s", path)
                moved.append(target)
        return moved

    def _running(self) -> bool:
        return self._master_pid is not None and is_alive(self._master_pid)

    async def _ensure_running(self) -> None:
        if not self._started:
            raise RouterError("the nginx router is not started (call start() first)")
        if not self._running():
            log.warning("nginx master %s is gone; starting a new one", self._master_pid)
            await self._spawn()

    async def _spawn(self) -> None:
        out = (self.directory / "logs" / "nginx.out").open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._command(self.config_path, "-g", "daemon off;"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        except OSError as exc:
            raise RouterError(f"cannot run {self.binary}: {exc}") from exc
        finally:
            out.close()
        self._master_pid = self._process.pid
        try:
            await self._wait_ready()
        except BaseException:
            # never leave a half-started master behind
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._process.wait()
            self._master_pid = self._process = None
            raise

    async def _wait_ready(self) -> None:
        """Until the master wrote its pid file, has a worker and the port accepts."""
        deadline = time.monotonic() + self.timeout
        pid = self._master_pid
        while time.monotonic() < deadline:
            if pid is None or not is_alive(pid):
                raise RouterError(f"nginx exited while starting: {self._log_tail()}")
            if (
                read_pid(self.pid_path) == pid
                and worker_titles(pid)
                and await accepts_connections(self.listen_host, self.listen_port)
            ):
                return
            await asyncio.sleep(0.05)
        raise RouterError(f"nginx did not accept on {self._listen} in time: {self._log_tail()}")

    async def _exited(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), timeout)
            return self._process.returncode is not None
        deadline = time.monotonic() + timeout
        while is_alive(pid):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    # -- config test and reload --------------------------------------------------

    async def _test(self, config: Path) -> str:
        """Run ``nginx -t`` on ``config``; its output, or RouterError with nginx's message."""
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(config, "-t", "-q"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as exc:
            raise RouterError(f"cannot run {self.binary}: {exc}") from exc
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise RouterError(f"nginx -t took longer than {self.timeout}s") from exc
        message = _LOG_PREFIX.sub(r"\1 ", output.decode(errors="replace")).strip()
        if process.returncode != 0:
            raise RouterError(f"nginx rejected the configuration: {message}")
        return message

    async def _test_with(self, path: Path, candidate: Path, hosts: set[str]) -> None:
        """Test the whole config as it would be with ``candidate`` in place of ``path``."""
        names = sorted({p.name for p in self.routes_dir.glob(f"*{SUFFIX}")} | {path.name})
        includes = [str(candidate if n == path.name else self.routes_dir / n) for n in names]
        test_config = self.directory / ".nginx.test.conf"
        text = render_main_config(self.directory, self._listen, includes, self._user)
        await asyncio.to_thread(test_config.write_text, text, "utf-8")
        try:
            output = await self._test(test_config)
        finally:
            test_config.unlink(missing_ok=True)
        for host in re.findall(r'conflicting server name "([^"]+)"', output):
            if host in hosts:
                raise ConflictError(f"host {host} is already routed by another environment")

    async def _reload_or_restore(self, path: Path, previous: str | None) -> None:
        try:
            await self._reload()
        except RouterError:
            if previous is None:
                await asyncio.to_thread(config_file.remove, path)
            else:
                await asyncio.to_thread(config_file.write_atomic, path, previous)
            raise

    async def _reload(self) -> None:
        pid = self._master_pid
        if pid is None:
            raise RouterError("nginx is not running")
        old = set(worker_titles(pid))
        log_offset = self.error_log.stat().st_size if self.error_log.exists() else 0
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError as exc:
            raise RouterError(f"nginx master {pid} is gone") from exc
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            workers = worker_titles(pid)
            fresh = [w for w, title in workers.items() if w not in old and is_serving(title)]
            stale = [w for w, title in workers.items() if w in old and is_serving(title)]
            if fresh and not stale:
                return
            emergency = emergencies_since(self.error_log, log_offset)
            if emergency or not is_alive(pid):
                raise RouterError(f"nginx refused the reload: {emergency or self._log_tail()}")
            await asyncio.sleep(0.02)
        raise RouterError(f"nginx did not reload within {self.timeout}s: {self._log_tail()}")

    def _log_tail(self, lines: int = 5) -> str:
        texts = []
        for path in (self.error_log, self.directory / "logs" / "nginx.out"):
            with contextlib.suppress(OSError):
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return " | ".join(texts[-lines:]) or "(no log output)"
