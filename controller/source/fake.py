"""An in-memory Source for unit tests: "push" commits, then resolve and read them.

It keeps the real adapter's rules that callers can trip over: a commit can only
be read after ``resolve`` fetched it, a missing branch is a ``SourceError`` and
an unreachable remote a ``SourceUnavailable``.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Mapping

from controller.errors import SourceError, SourceUnavailable


class FakeSource:
    def __init__(self) -> None:
        self.heads: dict[tuple[str, str], str] = {}
        self.commits: dict[tuple[str, str], dict[str, bytes]] = {}
        self.fetched: set[tuple[str, str]] = set()
        self.unreachable: set[str] = set()

    def push(
        self, url: str, files: Mapping[str, str | bytes | None], *, branch: str = "main"
    ) -> str:
        """Commit ``files`` on top of the branch (None deletes a path); return the id."""
        parent = self.heads.get((url, branch))
        tree = dict(self.commits[(url, parent)]) if parent else {}
        for path, content in files.items():
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = content.encode() if isinstance(content, str) else content
        sha = hashlib.sha1(  # noqa: S324 - an id like git's, not security
            f"{url}|{branch}|{parent}|{len(self.commits)}|{_digest(tree)}".encode()
        ).hexdigest()
        self.commits[(url, sha)] = tree
        self.heads[(url, branch)] = sha
        return sha

    def delete_branch(self, url: str, branch: str) -> None:
        del self.heads[(url, branch)]

    async def remote_head(self, repo_url: str, branch: str) -> str | None:
        self._reach(repo_url)
        return self.heads.get((repo_url, branch))

    async def resolve(self, repo_url: str, branch: str) -> str:
        self._reach(repo_url)
        sha = self.heads.get((repo_url, branch))
        if sha is None:
            raise SourceError(f"branch '{branch}' not found in {repo_url}")
        self.fetched.add((repo_url, sha))
        return sha

    async def read_file(self, repo_url: str, revision: str, path: str) -> bytes | None:
        files = self._files(repo_url, revision)
        name = _normalise(path)
        if name in files:
            return files[name]
        if _under(files, name):
            raise SourceError(f"'{path}' is a directory at {revision[:12]} in {repo_url}")
        return None

    async def tree_id(self, repo_url: str, revision: str, path: str) -> str:
        return _digest(_under(self._files(repo_url, revision), path, missing_ok=False))

    async def archive(self, repo_url: str, revision: str, path: str) -> bytes:
        files = _under(self._files(repo_url, revision), path, missing_ok=False)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name in sorted(files):
                member = tarfile.TarInfo(name)
                member.size, member.mtime = len(files[name]), 0
                tar.addfile(member, io.BytesIO(files[name]))
        return buffer.getvalue()

    def _reach(self, url: str) -> None:
        if url in self.unreachable:
            raise SourceUnavailable(f"remote unreachable: {url}")

    def _files(self, url: str, revision: str) -> dict[str, bytes]:
        if (url, revision) not in self.fetched:
            raise SourceError(f"revision {revision[:12]} of {url} is not in the cache")
        return self.commits[(url, revision)]


def _under(files: dict[str, bytes], path: str, *, missing_ok: bool = True) -> dict[str, bytes]:
    """The files below directory ``path``, named relative to it ('' or '.' is the root)."""
    directory = _normalise(path)
    prefix = f"{directory}/" if directory else ""
    found = {k.removeprefix(prefix): v for k, v in files.items() if k.startswith(prefix)}
    if not found and not missing_ok:
        raise SourceError(f"directory '{path}' not found")
    return found


def _normalise(path: str) -> str:
    return "/".join(part for part in path.split("/") if part not in ("", "."))


def _digest(files: Mapping[str, bytes]) -> str:
    hasher = hashlib.sha256()
    for name in sorted(files):
        hasher.update(f"{name}\0{len(files[name])}\0".encode() + files[name])
    return hasher.hexdigest()[:40]
