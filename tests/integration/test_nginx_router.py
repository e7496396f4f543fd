"""NginxRouter against a real nginx master: routing, reloads under load, rejection, cleanup.

Two tiny asyncio HTTP backends on loopback answer "v1 <path>" and "v2 <path>"; every
request goes through the edge with a Host header, on a fresh connection.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.errors import RouterError
from controller.router.nginx import NginxRouter
from controller.state import EnvironmentKey, RouteTarget
from tests.support import async_wait_until

pytestmark = pytest.mark.nginx

KEY = EnvironmentKey("acme", "shop", "production")
HOST = "a.localhost"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Backend:
    """Answers every request with ``<name> <path-and-query>`` (and the body size for POST)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):  # nginx keeps upstream connections open
                writer.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:  # nginx keeps upstream connections alive
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                target = head.split(" ", 2)[1]
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                text = f"{self.name} {target}" + (f" body={len(body)}" if length else "")
                payload = text.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
                writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the edge closed its upstream connection
        finally:
            self._connections.discard(writer)
            writer.close()


async def fetch(
    port: int, host: str, path: str = "/", *, body: bytes | None = None
) -> tuple[int, str]:
    """One request on a fresh connection; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        method = "POST" if body is not None else "GET"
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    if not status_line.startswith(b"HTTP/1.1 "):
        raise ConnectionError(f"no HTTP response: {raw[:80]!r}")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


def route(backend: Backend, path: str = "/", *, strip: bool = False) -> RouteTarget:
    return RouteTarget(HOST, path, backend.name, (backend.address,), strip_prefix=strip)


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


@pytest.fixture
async def backends() -> AsyncIterator[tuple[Backend, Backend]]:
    v1, v2 = Backend("v1"), Backend("v2")
    await v1.start()
    await v2.start()
    try:
        yield v1, v2
    finally:
        await v1.stop()
        await v2.stop()


async def started_router(directory: Path, binary: str) -> NginxRouter:
    router = NginxRouter(directory, listen_port=free_port(), binary=binary, timeout=15.0)
    try:
        await router.start()
    except BaseException:
        await router.close()
        raise
    return router


@pytest.fixture
async def router(nginx_path: str, tmp_path: Path) -> AsyncIterator[NginxRouter]:
    router = await started_router(tmp_path / "nginx", nginx_path)
    try:
        yield router
    finally:
        await router.close()


async def test_routes_by_host_and_switches_upstreams(
    router: NginxRouter, backends: tuple[Backend, Backend]
) -> None:
    v1, v2 = backends
    port = router.listen_port

    await router.apply(KEY, [route(v1)])
    assert await fetch(port, HOST) == (200, "v1 /")
    assert await fetch(port, "unknown.localhost") == (404, "no route for this host\n")

    await router.apply(KEY, [route(v2)])
    assert await fetch(port, HOST, "/page?x=1") == (200, "v2 /page?x=1")
    assert await router.observe(KEY) == [route(v2)]
    assert await router.environments() == [KEY]


@dataclass
class Load:
    """What the clients saw: (start time, status, body) per response, and every failure."""

    attempts: int = 0
    stopped: bool = False
    results: list[tuple[float, int, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def served_since(self, moment: float, count: int = 20) -> Callable[[], Awaitable[bool]]:
        async def enough() -> bool:
            served = sum(1 for started, _, _ in self.results if started >= moment)
            return served >= count or self.stopped

        return enough


async def test_twenty_switches_under_load_fail_no_request(
    router: NginxRouter, backends: tuple[Backend, Backend]
) -> None:
    v1, v2 = backends
    switches, clients, max_requests, budget = 20, 6, 40_000, 15.0
    await router.apply(KEY, [route(v1)])
    load, stop = Load(), asyncio.Event()
    deadline = time.monotonic() + budget

    async def client() -> None:
        while not stop.is_set() and time.monotonic() < deadline and load.attempts < max_requests:
            load.attempts += 1
            started = time.monotonic()
            try:
                status, body = await fetch(router.listen_port, HOST)
            except OSError as exc:
                load.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            load.results.append((started, status, body))
            if status != 200:
                load.failures.append(f"HTTP {status}: {body!r}")
        load.stopped = True  # out of budget: the switch loop stops waiting for traffic

    began = time.monotonic()
    # (apply called, apply returned, version) per switch
    windows: list[tuple[float, float, str]] = [(0.0, began, "v1")]
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    try:
        await async_wait_until(load.served_since(began), timeout=budget)
        for number in range(switches):
            target = v2 if number % 2 == 0 else v1
            called = time.monotonic()
            await router.apply(KEY, [route(target)])
            returned = time.monotonic()
            windows.append((called, returned, target.name))
            # let traffic flow on the new routes before the next switch
            await async_wait_until(load.served_since(returned), timeout=budget)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    elapsed = time.monotonic() - began

    print(
        f"\nnginx zero-downtime: {load.attempts} requests, {switches} switches, "
        f"{len(load.failures)} failed, {clients} clients, {elapsed:.1f}s, "
        f"{load.attempts / elapsed:.0f} req/s"
    )
    assert load.failures == []
    # A request started after apply() returned (and before the next apply) saw the new routes,
    # and every one of the 20 route sets carried traffic.
    served = [0] * len(windows)
    for started, _, body in load.results:
        current = max(i for i, (_, returned, _) in enumerate(windows) if returned <= started)
        next_call = windows[current + 1][0] if current + 1 < len(windows) else float("inf")
        if started < next_call:
            assert body.startswith(windows[current][2]), (started, body, windows[current])
            served[current] += 1
    assert min(served) >= 20, served


async def test_rejected_config_raises_and_previous_routes_keep_serving(
    router: NginxRouter, backends: tuple[Backend, Backend]
) -> None:
    v1, _ = backends
    await router.apply(KEY, [route(v1)])
    pid, workers = router.master_pid, children(router.master_pid or 0)

    broken = RouteTarget(HOST, "/", "web", ("127.0.0.1:99999",))
    with pytest.raises(RouterError, match="invalid port"):
        await router.apply(KEY, [broken])

    assert await fetch(router.listen_port, HOST) == (200, "v1 /")
    assert await router.observe(KEY) == [route(v1)]
    assert (router.master_pid, children(router.master_pid or 0)) == (pid, workers)
    assert sorted(p.name for p in router.routes_dir.iterdir()) == [f"{KEY.slug}.conf"]


async def test_path_prefix_and_strip_prefix(
    router: NginxRouter, backends: tuple[Backend, Backend]
) -> None:
    v1, v2 = backends
    port = router.listen_port
    await router.apply(
        KEY,
        [
            route(v1),
            route(v2, "/api", strip=True),
            route(v2, "/keep"),
            RouteTarget("b.localhost", "/only", "v1", (v1.address,)),
            RouteTarget("down.localhost", "/", "web", ()),
        ],
    )

    assert await fetch(port, HOST, "/") == (200, "v1 /")
    assert await fetch(port, HOST, "/api/users?page=2") == (200, "v2 /users?page=2")
    assert await fetch(port, HOST, "/api") == (200, "v2 /")
    assert await fetch(port, HOST, "/keep/this") == (200, "v2 /keep/this")
    assert await fetch(port, "b.localhost", "/only/x") == (200, "v1 /only/x")
    assert await fetch(port, "b.localhost", "/elsewhere") == (404, "no route for this path\n")
    status, text = await fetch(port, "down.localhost")
    assert (status, text) == (503, "no healthy upstream for service web\n")


async def test_remove_makes_the_host_unknown(
    router: NginxRouter, backends: tuple[Backend, Backend]
) -> None:
    v1, _ = backends
    await router.apply(KEY, [route(v1)])

    await router.remove(KEY)
    await router.remove(KEY)

    assert await fetch(router.listen_port, HOST) == (404, "no route for this host\n")
    assert await router.observe(KEY) == []
    assert await router.environments() == []


async def test_hand_edited_file_reads_as_no_routes(
    router: NginxRouter, backends: tuple[Backend, Backend]
) -> None:
    v1, _ = backends
    await router.apply(KEY, [route(v1)])
    path = router.routes_dir / f"{KEY.slug}.conf"
    path.write_text(path.read_text().replace("max_fails=0", "max_fails=3"))

    assert await router.observe(KEY) == []

    await router.apply(KEY, [route(v1)])
    assert await router.observe(KEY) == [route(v1)]


@pytest.fixture(params=["private", "world-traversable"])
def edge_directory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """(directory, private): under pytest's root-only tmp dir workers stay root; in a
    directory everyone may enter they run as nobody."""
    if request.param == "private":
        yield tmp_path / "nginx", True
        return
    directory = Path(tempfile.mkdtemp(prefix="railyard-nginx-"))
    directory.chmod(0o755)
    try:
        yield directory, False
    finally:
        shutil.rmtree(directory)


def uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


async def test_large_request_bodies_reach_the_backend(
    nginx_path: str, edge_directory: tuple[Path, bool], backends: tuple[Backend, Backend]
) -> None:
    """Bodies over nginx's 16 KiB buffer go through its temp dir, which workers must reach."""
    (directory, private), (v1, _) = edge_directory, backends
    router = await started_router(directory, nginx_path)
    try:
        await router.apply(KEY, [route(v1)])
        status, text = await fetch(router.listen_port, HOST, "/upload", body=b"x" * 300_000)
        worker_uids = {uid_of(pid) for pid in children(router.master_pid or 0)}
    finally:
        await router.close()

    assert (status, text) == (200, "v1 /upload body=300000")
    if os.geteuid() == 0:
        assert worker_uids == {0 if private else pwd.getpwnam("nobody").pw_uid}


async def test_a_new_router_adopts_the_running_master(
    router: NginxRouter, backends: tuple[Backend, Backend]
) -> None:
    """Restarting Railyard must not take the edge down: the next start() adopts nginx."""
    v1, v2 = backends
    await router.apply(KEY, [route(v1)])

    successor = NginxRouter(
        router.directory, listen_port=router.listen_port, binary=router.binary, timeout=15.0
    )
    await successor.start()
    await successor.apply(KEY, [route(v2)])

    assert successor.master_pid == router.master_pid
    assert await fetch(router.listen_port, HOST) == (200, "v2 /")


async def test_close_leaves_no_nginx_process(nginx_path: str, tmp_path: Path) -> None:
    router = await started_router(tmp_path / "nginx", nginx_path)
    master = router.master_pid
    assert master is not None
    workers = children(master)
    assert workers

    await router.close()

    assert not alive(master)
    assert not any(alive(worker) for worker in workers)
    assert running_with(router.directory) == []


async def test_start_on_a_taken_port_fails_and_leaves_no_process(
    nginx_path: str, tmp_path: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        router = NginxRouter(tmp_path / "nginx", listen_port=port, binary=nginx_path, timeout=15)

        with pytest.raises(RouterError, match="Address already in use"):
            await router.start()

    assert router.master_pid is None
    assert running_with(router.directory) == []


def running_with(directory: Path) -> list[int]:
    """Live processes whose command line names ``directory`` (an nginx master's does)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(directory).encode() in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found
