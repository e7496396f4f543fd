"""The Source port: what Git says should run."""

from __future__ import annotations

from controller.settings import Settings
from controller.source.base import Source

__all__ = ["Source", "make_source"]


def make_source(settings: Settings) -> Source:
    from controller.source.git import GitSource

    return GitSource(settings.git_cache_dir)
