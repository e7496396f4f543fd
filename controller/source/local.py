"""The Source port over a working tree on this machine: ``dir:///abs/path``.

A developer's inner loop: ``railyard apps add NAME --path .`` deploys what is on
disk, uncommitted edits included, and every save redeploys (the trigger is
``controller/watchers.py``). The directory need not be a Git repository.

A working tree has no history, only "now", so the port's words change meaning:

* ``resolve`` (and ``remote_head``) return ``snapshot_directory(path)``, a content
  id ``local-<hex>`` that the reconciler records where a commit id would go; the
  branch is ignored.
* ``read_file``, ``tree_id`` and ``archive`` always read the directory as it is
  now. The ``revision`` they are given is informational: when the tree changed
  since it was resolved, they still read the current files (there is nothing
  else to read). A later save triggers a reconcile that records the new id, so
  what runs catches up with what is on disk. One consequence: a rollback, or a
  resync holding an older revision, deploys today's files, not the old ones.
* ``tree_id`` hashes a subdirectory with the snapshot's rules (ignored names such
  as ``.git``, ``node_modules`` and editor swap files are left out, links are not
  followed), so ``tree_id(url, rev, ".") == resolve(url, ...)`` for an unchanged tree.
* ``archive`` packs that same content as a deterministic tar (sorted, fixed owner
  and mtime, no ignored paths), refusing symbolic links that point outside the
  working tree and contexts over ``max_archive_bytes``. Images are tagged by
  ``tree_id``; if the files changed between ``tree_id`` and ``archive`` of one
  revision (a save during a deploy), ``archive`` raises ``SourceUnavailable``
  rather than build one content under another content's tag.

Disk errors are mapped at this boundary: a missing path or a refused permission
is a ``SourceError`` (someone must act), any other ``OSError`` a
``SourceUnavailable`` (retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import io
import os
import posixpath
import stat
import tarfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from controller.errors import SourceError, SourceUnavailable
from controller.source.routing import working_tree_path
from controller.source.watch import SNAPSHOT_PREFIX, _ignored, snapshot_directory

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
REMEMBERED_TREE_IDS = 256
_PERMANENT_OS_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


@dataclass(frozen=True)
class _Entry:
    """One file or symbolic link of a directory, named relative to it."""

    relative: str
    path: Path
    is_link: bool
    executable: bool = False
    size: int = 0
    link_target: str = ""


class LocalTreeSource:
    """The Source port for ``dir://`` URLs: a directory on disk, read as it is now."""

    def __init__(self, *, max_archive_bytes: int = MAX_ARCHIVE_BYTES) -> None:
        self._max_archive_bytes = max_archive_bytes
        # tree_id's answers, so that archive can prove it packs the content the image
        # tag names. Reconciles may run on several threads, hence the lock.
        self._tree_ids: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._tree_ids_lock = threading.Lock()

    async def remote_head(self, repo_url: str, branch: str) -> str | None:
        return await self.resolve(repo_url, branch)

    async def resolve(self, repo_url: str, branch: str) -> str:
        root = working_tree_path(repo_url)
        return await asyncio.to_thread(_snapshot, root)

    async def read_file(self, repo_url: str, revision: str, path: str) -> bytes | None:
        root = working_tree_path(repo_url)
        return await asyncio.to_thread(_read_file, root, path)

    async def tree_id(self, repo_url: str, revision: str, path: str) -> str:
        root = working_tree_path(repo_url)
        content_id = await asyncio.to_thread(_tree_id, root, path)
        self._remember(repo_url, revision, path, content_id)
        return content_id

    async def archive(self, repo_url: str, revision: str, path: str) -> bytes:
        root = working_tree_path(repo_url)
        tar, content_id = await asyncio.to_thread(_archive, root, path, self._max_archive_bytes)
        expected = self._remembered(repo_url, revision, path)
        if expected is not None and expected != content_id:
            raise SourceUnavailable(
                f"the files under '{_relative_path(path) or '.'}' in {root} changed while "
                "deploying; the next reconcile builds the new content"
            )
        return tar

    def _remember(self, repo_url: str, revision: str, path: str, content_id: str) -> None:
        key = (repo_url, revision, _relative_path(path))
        with self._tree_ids_lock:
            self._tree_ids[key] = content_id
            self._tree_ids.move_to_end(key)
            while len(self._tree_ids) > REMEMBERED_TREE_IDS:
                self._tree_ids.popitem(last=False)

    def _remembered(self, repo_url: str, revision: str, path: str) -> str | None:
        with self._tree_ids_lock:
            return self._tree_ids.get((repo_url, revision, _relative_path(path)))


# -- on disk (these run in threads) ------------------------------------------------------


def _snapshot(root: Path) -> str:
    with _disk_errors(f"cannot read working tree {root}"):
        return snapshot_directory(root)


def _read_file(root: Path, path: str) -> bytes | None:
    relative = _relative_path(path)
    if not relative:
        raise SourceError(f"'.' is a directory in working tree {root}")
    *parents, name = PurePosixPath(relative).parts
    if any(_ignored(part, directory=True) for part in parents) or _ignored(name, directory=False):
        return None  # not part of the tree, as for the snapshot
    with _disk_errors(f"cannot read '{relative}' in working tree {root}"):
        top = _existing_root(root)
        target = _resolve(top / relative)
        if target is None:
            return None
        _inside(top, target, relative)
        if target.is_dir():
            raise SourceError(f"'{relative}' is a directory in working tree {root}")
        content = _read_regular(target)
        if content is None:
            raise SourceError(f"'{relative}' is not a regular file in working tree {root}")
        return content


def _tree_id(root: Path, path: str) -> str:
    with _disk_errors(f"cannot read working tree {root}"):
        directory = _directory(root, path)
        digest = hashlib.sha256()
        for entry in _entries(directory):
            if entry.is_link:
                digest.update(_link_record(entry))
                continue
            content_digest = _file_digest(entry.path)
            if content_digest is not None:
                digest.update(_file_record(entry, content_digest))
        return SNAPSHOT_PREFIX + digest.hexdigest()[:40]


def _archive(root: Path, path: str, max_bytes: int) -> tuple[bytes, str]:
    """The tar of directory ``path`` of the tree, and the content id of what it packs."""
    with _disk_errors(f"cannot read working tree {root}"):
        top = _existing_root(root)
        directory = _directory(root, path)
        prefix = directory.relative_to(top).as_posix()
        digest = hashlib.sha256()
        buffer = io.BytesIO()
        packed = 0
        directories: set[str] = set()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for entry in _entries(directory):
                if entry.is_link:
                    _refuse_escaping_link(root, prefix, entry)
                    _add_parents(tar, entry.relative, directories)
                    tar.addfile(_link_member(entry))
                    digest.update(_link_record(entry))
                    continue
                if packed + entry.size > max_bytes:
                    raise _too_large(path, max_bytes)
                content = _read_regular(entry.path)
                if content is None:
                    continue  # deleted or replaced while we looked: the id shows it
                packed += len(content)
                if packed > max_bytes:
                    raise _too_large(path, max_bytes)
                _add_parents(tar, entry.relative, directories)
                tar.addfile(_file_member(entry, len(content)), io.BytesIO(content))
                digest.update(_file_record(entry, hashlib.sha256(content).hexdigest()))
        return buffer.getvalue(), SNAPSHOT_PREFIX + digest.hexdigest()[:40]


def _entries(directory: Path) -> Iterator[_Entry]:
    """Every file and link under ``directory`` outside the ignored names, in the
    snapshot's order: a directory's own entries sorted by name, then its subdirectories."""

    def fail(exc: OSError) -> None:
        raise exc

    for root, subdirectories, files in os.walk(directory, onerror=fail):
        subdirectories[:] = sorted(d for d in subdirectories if not _ignored(d, directory=True))
        # os.walk lists a link to a directory among the directories and does not enter it.
        linked = [d for d in subdirectories if Path(root, d).is_symlink()]
        for name in sorted([*files, *linked]):
            if _ignored(name, directory=False):
                continue
            entry = _entry(directory, Path(root, name))
            if entry is not None:
                yield entry


def _entry(top: Path, path: Path) -> _Entry | None:
    relative = path.relative_to(top).as_posix()
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            return _Entry(relative, path, is_link=True, link_target=os.readlink(path))
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None  # sockets, pipes, devices: not content
    executable = bool(info.st_mode & stat.S_IXUSR)
    return _Entry(relative, path, is_link=False, executable=executable, size=info.st_size)


def _read_regular(path: Path) -> bytes | None:
    """A regular file's bytes, never through a link (one swapped in after the walk
    looked must not smuggle a file from outside the tree); None when it is gone."""
    with _open_regular(path) as handle:
        return None if handle is None else handle.read()


def _file_digest(path: Path) -> str | None:
    with _open_regular(path) as handle:
        return None if handle is None else hashlib.file_digest(handle, "sha256").hexdigest()


@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[io.BufferedReader | None]:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        yield None
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link now: gone as a regular file
            yield None
            return
        raise
    with os.fdopen(descriptor, "rb") as handle:
        yield handle if stat.S_ISREG(os.fstat(descriptor).st_mode) else None


# -- the content id's records: the same bytes snapshot_directory hashes ------------------


def _file_record(entry: _Entry, content_digest: str) -> bytes:
    executable = "x" if entry.executable else "-"
    return f"file\0{entry.relative}\0{executable}\0{content_digest}\0".encode()


def _link_record(entry: _Entry) -> bytes:
    return f"link\0{entry.relative}\0{entry.link_target}\0".encode()


# -- tar members: fixed owner and mtime, so the same content packs to the same bytes -----


def _member(name: str) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.mtime = 0
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _add_parents(tar: tarfile.TarFile, relative: str, added: set[str]) -> None:
    """Directory members for the parents of ``relative`` not added yet (empty ones never are)."""
    parents = PurePosixPath(relative).parents
    for parent in reversed([p.as_posix() for p in parents if p.as_posix() != "."]):
        if parent not in added:
            added.add(parent)
            member = _member(parent)
            member.type, member.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(member)


def _file_member(entry: _Entry, size: int) -> tarfile.TarInfo:
    member = _member(entry.relative)
    member.size = size
    member.mode = 0o755 if entry.executable else 0o644
    return member


def _link_member(entry: _Entry) -> tarfile.TarInfo:
    member = _member(entry.relative)
    member.type, member.mode = tarfile.SYMTYPE, 0o777
    member.linkname = entry.link_target
    return member


# -- paths ---------------------------------------------------------------------------------


def _relative_path(path: str) -> str:
    """``path`` inside the working tree, normalised: '' is the root."""
    parts = [part for part in PurePosixPath(path.strip()).parts if part not in ("/", ".")]
    if ".." in parts:
        raise SourceError(f"path {path!r} points outside the working tree")
    return "/".join(parts)


def _existing_root(root: Path) -> Path:
    """The tree's real path; SourceError when it is not a directory (any more)."""
    if not root.is_dir():
        raise SourceError(f"working tree {root} is not a directory")
    return root.resolve(strict=True)


def _directory(root: Path, path: str) -> Path:
    """The real path of directory ``path`` of the tree, which must stay inside it."""
    top = _existing_root(root)
    relative = _relative_path(path)
    if not relative:
        return top
    directory = _resolve(top / relative)
    if directory is None:
        raise SourceError(f"directory '{relative}' not found in working tree {root}")
    _inside(top, directory, relative)
    if not directory.is_dir():
        raise SourceError(f"'{relative}' is not a directory in working tree {root}")
    return directory


def _resolve(path: Path) -> Path | None:
    """The real path of ``path``, or None when it does not exist."""
    try:
        return path.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except RuntimeError as exc:  # pathlib's "Symlink loop" before Python 3.13
        raise SourceError(str(exc)) from exc


def _inside(top: Path, resolved: Path, relative: str) -> None:
    if not resolved.is_relative_to(top):
        raise SourceError(f"'{relative}' points outside the working tree {top}")


def _refuse_escaping_link(root: Path, prefix: str, entry: _Entry) -> None:
    """A link may point anywhere inside the working tree, never outside it."""
    in_tree = posixpath.join(prefix, entry.relative) if prefix != "." else entry.relative
    target = posixpath.normpath(posixpath.join(posixpath.dirname(in_tree), entry.link_target))
    if entry.link_target.startswith("/") or target == ".." or target.startswith("../"):
        raise SourceError(
            f"symbolic link '{in_tree}' -> '{entry.link_target}' points outside "
            f"the working tree {root}"
        )


def _too_large(path: str, max_bytes: int) -> SourceError:
    return SourceError(
        f"build context '{_relative_path(path) or '.'}' is larger than "
        f"{max_bytes // (1024 * 1024)} MiB"
    )


@contextlib.contextmanager
def _disk_errors(what: str) -> Iterator[None]:
    """Map ``OSError`` to Railyard's errors."""
    try:
        yield
    except _PERMANENT_OS_ERRORS as exc:
        raise SourceError(f"{what}: {exc.strerror or exc}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceError(f"{what}: symbolic link loop") from exc
        raise SourceUnavailable(f"{what}: {exc.strerror or exc}") from exc
