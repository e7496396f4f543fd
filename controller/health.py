"""Health checks of replicas: one probe at a time, through the ``Prober`` port.

Probes reach containers at their published loopback port, never a bridge address.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import httpx

from controller.state import HealthCheck, ObservedContainer


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


class Prober(Protocol):
    async def probe(self, container: ObservedContainer, check: HealthCheck) -> ProbeResult: ...


class HttpProber:
    """HTTP GET on the health path when set (2xx/3xx is healthy), else a TCP connect."""

    async def probe(self, container: ObservedContainer, check: HealthCheck) -> ProbeResult:
        if not container.running:
            return ProbeResult(False, f"container is {container.state}")
        if container.host_port is None:
            return ProbeResult(True, "running (no port to check)")
        if check.path:
            return await self._http(container.host_port, check)
        return await self._tcp(container.host_port, check.timeout)

    async def _http(self, port: int, check: HealthCheck) -> ProbeResult:
        url = f"http://127.0.0.1:{port}{check.path}"
        try:
            async with httpx.AsyncClient(timeout=check.timeout) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            return ProbeResult(False, f"GET {check.path}: {type(exc).__name__} {exc}".strip())
        ok = response.status_code < 400
        return ProbeResult(ok, f"GET {check.path} -> {response.status_code}")

    async def _tcp(self, port: int, timeout: float) -> ProbeResult:
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
        except (OSError, TimeoutError) as exc:
            return ProbeResult(False, f"port {port} not accepting connections: {exc}")
        writer.close()
        await writer.wait_closed()
        return ProbeResult(True, f"port {port} open")


class StaticProber:
    """A fake Prober for unit tests: healthy unless listed in ``unhealthy``."""

    def __init__(self) -> None:
        self.unhealthy: set[str] = set()
        """Service names, revisions or container ids that fail their probes."""
        self.probes = 0

    async def probe(self, container: ObservedContainer, check: HealthCheck) -> ProbeResult:
        self.probes += 1
        if not container.running:
            return ProbeResult(False, f"container is {container.state}")
        if self.unhealthy & {container.service, container.revision, container.id}:
            return ProbeResult(False, f"GET {check.path} -> 500")
        return ProbeResult(True, f"GET {check.path} -> 200")
