"""The nginx processes the router manages, as Linux shows them.

The router tells a master from a stranger, and a new worker from a retiring one, by
reading ``/proc`` (state, parent pid, process title); the error log tells it when a
reload was refused; a connect tells it the edge accepts. ``worker_user`` decides
whom the workers run as.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def worker_user(directory: Path) -> str:
    """The ``user`` directive: none unless the master runs as root.

    As root, workers run as nobody when nobody can reach ``directory/temp`` (nginx
    buffers large request bodies there; nginx chowns the temp dirs to the worker
    user, but cannot open a path below a directory only root may enter, such as
    pytest's ``/tmp/pytest-of-root``). Otherwise they stay root, with a warning."""
    if os.geteuid() != 0:
        return ""
    try:
        nobody = pwd.getpwnam("nobody")
        group = grp.getgrgid(nobody.pw_gid).gr_name
    except KeyError:
        return "root"
    if not all(os.stat(p).st_mode & stat.S_IXOTH for p in (directory, *directory.parents)):
        log.warning("nginx workers run as root: user nobody cannot enter %s", directory)
        return "root"
    return f"nobody {group}"


def _stat(pid: int | str) -> tuple[str, int] | None:
    """(state, parent pid) of a process, from ``/proc/<pid>/stat``; None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return fields[0], int(fields[1])
    except (OSError, ValueError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    found = _stat(pid)
    return found is not None and found[0] != "Z"


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def nginx_master(pid_path: Path, config_path: Path) -> int | None:
    """The pid of a live nginx master running ``config_path``, if the pid file names one."""
    pid = read_pid(pid_path)
    if pid is None or not is_alive(pid):
        return None
    title = _title(pid)
    if title.startswith("nginx: master process") and str(config_path) in title:
        return pid
    return None


def _title(pid: int) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return ""


def worker_titles(master: int) -> dict[int, str]:
    """The master's live worker processes: pid -> process title."""
    titles = {}
    for entry in os.scandir("/proc"):
        found = _stat(entry.name) if entry.name.isdigit() else None
        if found is not None and found[1] == master and found[0] != "Z":
            titles[int(entry.name)] = _title(int(entry.name))
    return {pid: title for pid, title in titles.items() if "worker process" in title}


def is_serving(title: str) -> bool:
    return "shutting down" not in title


def emergencies_since(error_log: Path, offset: int) -> str:
    with contextlib.suppress(OSError), error_log.open("rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
        return " | ".join(line for line in lines if "[emerg]" in line)
    return ""


async def accepts_connections(host: str, port: int) -> bool:
    target = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(target, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
