"""Webhook receiver throughput over real HTTP, next to a bare FastAPI endpoint.

Starts uvicorn (one worker, a free loopback port) in a subprocess serving the
webhook router with the in-memory backend plus ``POST /bare`` (returns
``{"ok": true}``), then sends N signed GitHub push deliveries with unique
delivery ids and N posts of the same body to ``/bare``, with a fixed number
of requests in flight, alternating the two endpoints in slices so that load
drift on a shared machine hits both alike. The gap between the two rows is what
verification, parsing, normalisation, recording and enqueueing cost.

    python -m tests.bench.webhook_bench --json out.json [--requests 5000] [--concurrency 32]

The client runs on the same machine, so on a small box it shares the CPU with
the server and req/s is a floor, not a ceiling; the server's own CPU time per
request (from /proc) is reported beside it as the client-independent cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from rich.console import Console
from rich.table import Table

from webhook.backend import InMemoryWebhookBackend, WebhookApp
from webhook.router import make_webhook_router
from webhook.verify import signature_headers

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_ID = "0b6f5d7e-3c1a-4c5e-9a43-5d1f7f1f2b10"
REPO_URL = "https://github.com/railyard-bench/app.git"
SECRET_VARIABLE = "RAILYARD_BENCH_WEBHOOK_SECRET"
STARTUP_TIMEOUT = 30.0
ROUNDS = 5


def make_bench_app() -> FastAPI:
    """The uvicorn factory run inside the server subprocess."""
    secret = os.environ[SECRET_VARIABLE]
    app = FastAPI()
    app.include_router(make_webhook_router())
    bench_app = WebhookApp(
        id=APP_ID, tenant_id="bench", repo_url=REPO_URL, branch="main", secret=secret
    )
    app.state.webhook_backend = InMemoryWebhookBackend([bench_app])

    @app.post("/bare")
    async def bare(request: Request) -> dict[str, bool]:
        # Read the body as the webhook does: an unread body makes uvicorn drop keep-alive.
        await request.body()
        return {"ok": True}

    return app


def github_push_body() -> bytes:
    """A push of three commits, shaped and sized like a real GitHub delivery (~5 KB)."""
    author = {"name": "Dev Eloper", "email": "dev@example.com", "username": "dev"}
    commits = [
        {
            "id": f"{index:040x}",
            "tree_id": f"{index + 100:040x}",
            "distinct": True,
            "message": f"Change number {index}\n\nA longer description of the change.",
            "timestamp": "2024-05-01T12:00:00+02:00",
            "url": f"https://github.com/railyard-bench/app/commit/{index:040x}",
            "author": author,
            "committer": author,
            "added": [f"src/new_{index}.py"],
            "removed": [],
            "modified": ["README.md", "src/app.py"],
        }
        for index in range(1, 4)
    ]
    payload = {
        "ref": "refs/heads/main",
        "before": "0" * 39 + "1",
        "after": f"{3:040x}",
        "created": False,
        "deleted": False,
        "forced": False,
        "base_ref": None,
        "compare": "https://github.com/railyard-bench/app/compare/1...3",
        "commits": commits,
        "head_commit": commits[-1],
        "repository": {
            "id": 123456,
            "name": "app",
            "full_name": "railyard-bench/app",
            "private": False,
            "html_url": "https://github.com/railyard-bench/app",
            "clone_url": REPO_URL,
            "ssh_url": "git@github.com:railyard-bench/app.git",
            "git_url": "git://github.com/railyard-bench/app.git",
            "default_branch": "main",
            "owner": {"login": "railyard-bench", "id": 1, "type": "Organization"},
        },
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "id": 2, "type": "User"},
    }
    return json.dumps(payload, indent=2).encode()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_server(port: int, secret: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.bench.webhook_bench:make_bench_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=os.environ | {SECRET_VARIABLE: secret})


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


async def wait_until_serving(client: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"uvicorn exited with status {server.returncode}")
        try:
            ready = (await client.post("/bare")).status_code == 200
        except httpx.TransportError:
            ready = False  # not listening yet
        if ready:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not answer within {STARTUP_TIMEOUT}s")
        await asyncio.sleep(0.05)


@dataclass
class Tally:
    """What one endpoint's measured rounds add up to."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0
    server_cpu: float | None = 0.0
    client_cpu: float = 0.0

    def summary(self) -> dict[str, Any]:
        count = len(self.latencies)
        ordered = sorted(self.latencies)
        row: dict[str, Any] = {
            "requests": count,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "requests_per_second": round(count / self.seconds, 1),
            "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "client_cpu_ms_per_request": round(self.client_cpu * 1000 / count, 3),
        }
        if self.server_cpu is not None:
            row["server_cpu_ms_per_request"] = round(self.server_cpu * 1000 / count, 3)
        return row


async def drive(
    client: httpx.AsyncClient,
    server: subprocess.Popen[bytes],
    path: str,
    requests: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    expected_status: int,
    tally: Tally,
) -> None:
    """Send every request with ``concurrency`` in flight and add the figures to ``tally``.

    CPU time is taken on both sides: the server's is its cost whatever the
    client does; the client's shows whether the client was the bottleneck.
    """
    queue = iter(requests)

    async def worker() -> None:
        for body, headers in queue:
            started = time.perf_counter()
            response = await client.post(path, content=body, headers=headers)
            tally.latencies.append(time.perf_counter() - started)
            tally.failures += response.status_code != expected_status

    server_before, client_before = server_cpu_seconds(server), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tally.seconds += time.perf_counter() - started
    tally.client_cpu += time.process_time() - client_before
    server_after = server_cpu_seconds(server)
    if server_before is None or server_after is None or tally.server_cpu is None:
        tally.server_cpu = None
    else:
        tally.server_cpu += server_after - server_before


def server_cpu_seconds(server: subprocess.Popen[bytes]) -> float | None:
    """User + system CPU the server process has used so far (Linux /proc; else None)."""
    try:
        fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def measure(requests: int, concurrency: int, rounds: int = ROUNDS) -> dict[str, Any]:
    """Warm up, then alternate the two endpoints in ``rounds`` slices so drift hits both alike."""
    secret = secrets.token_hex(32)
    body = github_push_body()
    webhook_headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        **signature_headers("github", secret, body),
    }
    warmup = min(500, requests)
    deliveries = [
        (body, webhook_headers | {"X-GitHub-Delivery": f"bench-{index}"})
        for index in range(warmup + requests)
    ]
    bare = [(body, {"Content-Type": "application/json"})] * (warmup + requests)
    webhook_path = f"/webhooks/github/{APP_ID}"
    tallies = {"bare": Tally(), "webhook": Tally()}
    slices = [
        slice(warmup + requests * n // rounds, warmup + requests * (n + 1) // rounds)
        for n in range(rounds)
    ]
    port = free_port()
    server = start_server(port, secret)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30.0
        ) as client:
            await wait_until_serving(client, server)
            warm = Tally()
            await drive(client, server, "/bare", bare[:warmup], concurrency, 200, warm)
            await drive(client, server, webhook_path, deliveries[:warmup], concurrency, 202, warm)
            for part in slices:
                await drive(client, server, "/bare", bare[part], concurrency, 200, tallies["bare"])
                await drive(
                    client,
                    server,
                    webhook_path,
                    deliveries[part],
                    concurrency,
                    202,
                    tallies["webhook"],
                )
    finally:
        stop_server(server)
    return {
        "benchmark": "webhook receiver vs bare FastAPI endpoint (uvicorn, 1 worker, loopback)",
        "concurrency": concurrency,
        "rounds": rounds,
        "body_bytes": len(body),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "results": {name: tally.summary() for name, tally in tallies.items()},
    }


def run(requests: int = 5000, concurrency: int = 32) -> dict[str, Any]:
    return asyncio.run(measure(requests, concurrency))


def print_table(report: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"{report['benchmark']}\n{report['body_bytes']} B bodies, "
        f"{report['concurrency']} in flight",
        caption="CPU columns: ms of process CPU per request (server: uvicorn; client: httpx)",
    )
    columns = ("endpoint", "requests", "failed", "req/s", "p50 ms", "p99 ms", "srv CPU", "cli CPU")
    for column in columns:
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for name, row in report["results"].items():
        table.add_row(
            name,
            str(row["requests"]),
            str(row["failures"]),
            f"{row['requests_per_second']:.0f}",
            f"{row['p50_ms']:.2f}",
            f"{row['p99_ms']:.2f}",
            str(row.get("server_cpu_ms_per_request", "n/a")),
            str(row["client_cpu_ms_per_request"]),
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    report = run(options.requests, options.concurrency)
    print_table(report, Console())
    if options.json is not None:
        options.json.write_text(json.dumps(report, indent=2) + "\n")
    failures = sum(row["failures"] for row in report["results"].values())
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
