"""The Source port: what Git (or a working tree on this machine) says should run."""

from __future__ import annotations

from collections.abc import Callable

from controller.settings import Settings
from controller.source.base import Source, SshKey

Credentials = Callable[[str], tuple[str, str] | SshKey | None]
"""repo URL -> (username, token) or an SSH deploy key for a private repository, or None."""

__all__ = ["Source", "make_source"]


def make_source(settings: Settings, credentials: Credentials | None = None) -> Source:
    """Git URLs through the Git adapter, ``dir://`` working trees read from disk."""
    from controller.source.git import GitSource
    from controller.source.local import LocalTreeSource
    from controller.source.routing import RoutingSource

    return RoutingSource(
        GitSource(settings.git_cache_dir, credentials=credentials), LocalTreeSource()
    )
