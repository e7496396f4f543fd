"""Deploy a local working tree: watch it for changes and name its content.

``railyard up`` in a project directory deploys what is on disk, uncommitted
edits included. Two small pieces make a working tree look like a Git branch to
the rest of Railyard:

* ``watch_directory`` is a trigger, like a webhook: it calls ``on_change``
  once per burst of edits (an editor's save, a ``git checkout``), and nothing
  for noise such as ``.git/``, ``__pycache__``, editor swap files or
  Railyard's own ``.railyard`` home.
* ``snapshot_directory`` is the revision: a content id of the tree (same files,
  same id) that the reconciler records where a commit id would go. An
  unchanged id means there is nothing to deploy, so a spurious trigger costs
  one hash of the tree.

    async def on_change() -> None:
        await enqueue_reconcile(environment_id)        # a trigger, never a deploy

    await watch_directory(project_dir, on_change, stop_event=stopping)

    # in the reconcile of a local app (off the event loop: it reads every file)
    revision = await asyncio.to_thread(snapshot_directory, project_dir)

Both apply the same ignore rules, so whatever the watcher ignores cannot
change the snapshot either.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import DefaultFilter, awatch

from controller.errors import RailyardError, SourceError

log = logging.getLogger(__name__)

IGNORED_DIRECTORIES = (
    ".git",
    ".hg",
    ".svn",
    ".railyard",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    ".venv",
    ".idea",
    "node_modules",
)
IGNORED_NAME_PATTERNS = (
    r"\.py[cod]$",
    r"\.sw.$",  # vim swap files
    r"~$",  # backups
    r"^\.#",  # emacs lock files
    r"^#.*#$",  # emacs autosaves
    r"^4913$",  # vim's write test
    r"^\.DS_Store$",
    r"\.___jb_\w+___$",  # JetBrains safe-write
)
_IGNORED_NAMES = tuple(re.compile(pattern) for pattern in IGNORED_NAME_PATTERNS)

SNAPSHOT_PREFIX = "local-"


async def watch_directory(
    path: Path,
    on_change: Callable[[], Awaitable[None]],
    *,
    debounce_ms: int = 500,
    stop_event: asyncio.Event | None = None,
) -> None:
    """Call ``on_change`` once per burst of changes under ``path`` until ``stop_event`` is set.

    A burst ends after ``debounce_ms`` without a change (or, for an endless stream
    of changes, every ten times that). Changes made while ``on_change`` runs make
    the next burst, so none is lost. A Railyard error raised by ``on_change`` is
    logged and watching goes on; anything else is a bug and propagates.
    """
    if not await asyncio.to_thread(path.is_dir):
        raise SourceError(f"not a directory: {path}")
    changes_filter = DefaultFilter(
        ignore_dirs=IGNORED_DIRECTORIES, ignore_entity_patterns=IGNORED_NAME_PATTERNS
    )
    async for changes in awatch(
        path,
        watch_filter=changes_filter,
        step=debounce_ms,
        debounce=debounce_ms * 10,
        stop_event=stop_event,
    ):
        log.debug("watch: %d change(s) under %s", len(changes), path)
        try:
            await on_change()
        except RailyardError as exc:
            log.warning("watch: reacting to a change under %s failed: %s", path, exc)


def snapshot_directory(path: Path) -> str:
    """A content id of the working tree at ``path``: ``local-`` and 40 hex digits.

    It covers every file's relative path, executable bit and bytes, and each
    symbolic link's target (links are not followed), outside the ignored names.
    """
    if not path.is_dir():
        raise SourceError(f"not a directory: {path}")
    digest = hashlib.sha256()
    for root, directories, files in os.walk(path):
        directories[:] = sorted(d for d in directories if not _ignored(d, directory=True))
        # os.walk lists a link to a directory among the directories and does not enter it.
        linked = [d for d in directories if Path(root, d).is_symlink()]
        for name in sorted([*files, *linked]):
            if not _ignored(name, directory=False):
                digest.update(_entry_digest(path, Path(root, name)))
    return SNAPSHOT_PREFIX + digest.hexdigest()[:40]


def _ignored(name: str, *, directory: bool) -> bool:
    if directory and name in IGNORED_DIRECTORIES:
        return True
    return any(pattern.search(name) for pattern in _IGNORED_NAMES)


def _entry_digest(top: Path, entry: Path) -> bytes:
    relative = entry.relative_to(top).as_posix()
    try:
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            return f"link\0{relative}\0{os.readlink(entry)}\0".encode()
        if not stat.S_ISREG(info.st_mode):
            return b""
        with entry.open("rb") as handle:
            content = hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        # Deleted while we looked (an editor's save); the watcher reports it again.
        return b""
    executable = "x" if info.st_mode & stat.S_IXUSR else "-"
    return f"file\0{relative}\0{executable}\0{content}\0".encode()
