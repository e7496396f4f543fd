"""One Source for every kind of repository URL: the scheme decides which adapter answers.

An app's ``repo_url`` is either a Git URL (``https://``, ``ssh://``, ``file://``, a
path, ...) or a working tree on this machine, ``dir:///abs/path``: a directory that
need not be a Git repository at all, deployed as it is on disk and redeployed on
every save (see ``controller/source/local.py`` and ``controller/watchers.py``).

The ``dir://`` form is a file URI with another scheme: an empty authority, an
absolute path, and the path's special characters percent-encoded
(``dir:///home/me/my%20app``). ``working_tree_url`` makes one from a path and
``working_tree_path`` reads one back, refusing what is not an absolute directory
path below ``/``.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from controller.errors import SourceError
from controller.source.base import Source

WORKING_TREE_SCHEME = "dir://"


def is_working_tree(repo_url: str) -> bool:
    """Whether ``repo_url`` names a local working tree (``dir://``) rather than a Git repo."""
    return repo_url[: len(WORKING_TREE_SCHEME)].lower() == WORKING_TREE_SCHEME


def working_tree_url(path: Path) -> str:
    """The ``dir://`` URL of the absolute directory ``path``."""
    if not path.is_absolute():
        raise SourceError(f"a working tree must be an absolute path: {path}")
    return WORKING_TREE_SCHEME + quote(path.as_posix(), safe="/")


def working_tree_path(repo_url: str) -> Path:
    """The directory a ``dir:///abs/path`` URL names. Raises SourceError when malformed."""
    if not is_working_tree(repo_url):
        raise SourceError(f"not a working tree URL (dir:///absolute/path): {repo_url}")
    parts = urlsplit(repo_url)
    if parts.netloc or parts.query or parts.fragment:
        raise SourceError(
            f"a working tree URL has no host, query or fragment: dir:///absolute/path, "
            f"not {repo_url}"
        )
    path = unquote(parts.path)
    if not path.startswith("/") or path.startswith("//") or "\0" in path:
        raise SourceError(f"a working tree URL needs an absolute path: {repo_url}")
    if ".." in path.split("/"):
        raise SourceError(f"a working tree path must not contain '..': {repo_url}")
    normalised = posixpath.normpath(path)
    if normalised == "/":
        raise SourceError("the file system root cannot be a working tree")
    return Path(normalised)


class RoutingSource:
    """The Source port over both kinds of URL: ``dir://`` to ``local``, anything else to ``git``."""

    def __init__(self, git: Source, local: Source) -> None:
        self.git = git
        self.local = local

    def _for(self, repo_url: str) -> Source:
        return self.local if is_working_tree(repo_url) else self.git

    async def remote_head(self, repo_url: str, branch: str) -> str | None:
        return await self._for(repo_url).remote_head(repo_url, branch)

    async def resolve(self, repo_url: str, branch: str) -> str:
        return await self._for(repo_url).resolve(repo_url, branch)

    async def read_file(self, repo_url: str, revision: str, path: str) -> bytes | None:
        return await self._for(repo_url).read_file(repo_url, revision, path)

    async def tree_id(self, repo_url: str, revision: str, path: str) -> str:
        return await self._for(repo_url).tree_id(repo_url, revision, path)

    async def archive(self, repo_url: str, revision: str, path: str) -> bytes:
        return await self._for(repo_url).archive(repo_url, revision, path)
