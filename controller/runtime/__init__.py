"""The Runtime port: where containers run. ``make_runtime(settings)`` picks the adapter."""

from __future__ import annotations

from controller.runtime.base import BuildLog, Runtime
from controller.settings import Settings

__all__ = ["BuildLog", "Runtime", "make_runtime"]


def make_runtime(settings: Settings) -> Runtime:
    from controller.runtime.docker import DockerRuntime

    return DockerRuntime()
