"""How the Docker adapter calls the SDK: off the event loop, with failures mapped.

Every SDK call blocks, so each runs in a worker thread; whatever the engine or its
socket raises reaches the caller as ``RuntimeUnavailable`` naming what was being done.
The runtime and its log follower thread share this translation (the adapter's whole
mapping is drawn in ``controller.runtime.docker``'s docstring).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import docker.errors

from controller.errors import RuntimeUnavailable

T = TypeVar("T")


async def call_engine(what: str, call: Callable[[], T]) -> T:
    """Run one blocking SDK ``call`` in a worker thread; ``what`` names it in errors."""
    try:
        return await asyncio.to_thread(call)
    except (docker.errors.DockerException, OSError) as exc:
        raise engine_error(what, exc) from exc


def engine_error(what: str, exc: Exception) -> RuntimeUnavailable:
    if isinstance(exc, docker.errors.APIError):
        return RuntimeUnavailable(f"Docker engine failed to {what}: {exc.explanation or exc}")
    return RuntimeUnavailable(f"Docker engine unreachable: {exc}")
