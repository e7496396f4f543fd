"""Webhook throughput driven by wrk (C), so the load generator is not the bottleneck.

The Python client in webhook_bench spends ~2 ms of CPU per request, more than the
server does; wrk spends microseconds. Each request is a signed GitHub push with a
unique X-GitHub-Delivery (GitHub signs the body only), so every one is verified,
normalised, recorded as new and enqueued — no duplicates shortcut the work.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.bench.webhook_bench import (
    APP_ID,
    free_port,
    github_push_body,
    start_server,
    stop_server,
)
from webhook.verify import signature_headers

LUA = """
local counter = 0
local body = io.open("{body_path}"):read("*a")
request = function()
  counter = counter + 1
  local headers = {{}}
  headers["Content-Type"] = "application/json"
  {headers}
  headers["X-GitHub-Delivery"] = "wrk-" .. counter .. "-" .. math.random(1, 1000000000)
  return wrk.format("POST", "{path}", headers, body)
end
"""


def _lua(directory: Path, path: str, body: bytes, headers: dict[str, str]) -> Path:
    body_path = directory / "body.json"
    body_path.write_bytes(body)
    lines = "\n  ".join(f'headers["{key}"] = "{value}"' for key, value in headers.items())
    script = directory / f"{path.strip('/').replace('/', '_')}.lua"
    script.write_text(LUA.format(body_path=body_path, headers=lines, path=path))
    return script


def _wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", output)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
    total = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": int(total.group(1)) if total else 0,
        "requests_per_second": float(rate.group(1)) if rate else 0.0,
        "p50_ms": _ms(p50),
        "p99_ms": _ms(p99),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def _ms(match: re.Match[str] | None) -> float:
    if match is None:
        return 0.0
    value, unit = float(match.group(1)), match.group(2)
    return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)


def run(seconds: int = 10, connections: int = 32) -> dict[str, Any] | None:
    """Bare endpoint and webhook, each for ``seconds``; None when wrk is not installed."""
    if shutil.which("wrk") is None:
        return None
    secret = secrets.token_hex(16)
    port = free_port()
    server = start_server(port, secret)
    base = f"http://127.0.0.1:{port}"
    body = github_push_body()
    try:
        for _ in range(600):
            try:
                if httpx.post(f"{base}/bare", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise RuntimeError("uvicorn exited before serving")
            threading.Event().wait(0.05)  # poll interval while uvicorn starts
        with tempfile.TemporaryDirectory(prefix="railyard-wrk-") as scratch:
            directory = Path(scratch)
            hook_path = f"/webhooks/github/{APP_ID}"
            signed = {"X-GitHub-Event": "push", **signature_headers("github", secret, body)}
            bare_script = _lua(directory, "/bare", body, {})
            hook_script = _lua(directory, hook_path, body, signed)
            results = {
                "bare": _wrk(base, bare_script, seconds, connections),
                "webhook": _wrk(base, hook_script, seconds, connections),
            }
    finally:
        stop_server(server)
    return {
        "tool": f"wrk -t1 -c{connections} -d{seconds}s",
        "body_bytes": len(body),
        "results": results,
    }
