"""What the reconciler needs from a Git repository. Only ``git.py`` imports pygit2."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SshKey:
    """A deploy key for ``ssh://`` repositories (OpenSSH private key text)."""

    private_key: str = field(repr=False)
    username: str = "git"
    passphrase: str = field(default="", repr=False)


class Source(Protocol):
    async def remote_head(self, repo_url: str, branch: str) -> str | None:
        """The branch's commit on the remote by a ref listing, without fetching.
        None when the branch does not exist."""
        ...

    async def resolve(self, repo_url: str, branch: str) -> str:
        """Fetch the branch into the local cache and return its head commit id.
        Raises SourceError (branch missing) or SourceUnavailable (remote unreachable)."""
        ...

    async def read_file(self, repo_url: str, revision: str, path: str) -> bytes | None:
        """A file's bytes at the commit, or None when it is not there."""
        ...

    async def tree_id(self, repo_url: str, revision: str, path: str) -> str:
        """A content id of the directory ``path`` at the commit (same content, same id)."""
        ...

    async def archive(self, repo_url: str, revision: str, path: str) -> bytes:
        """An uncompressed tar of the directory ``path`` at the commit (a build context)."""
        ...
