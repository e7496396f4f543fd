"""Real Git repositories for tests, made with the ``git`` command line.

Integration and end-to-end tests need a remote that behaves exactly like one a
tenant pushes to. ``GitRepo`` is a bare repository on disk; ``commit()`` writes
a commit straight into it and moves the branch (what ``git push`` does, without
a working tree to keep in step); ``git_daemon()`` serves bare repositories over
``git://`` on loopback.

    repo = GitRepo.create(tmp_path)
    first = repo.commit({"paas.yaml": "...", "web/run.sh": Executable("#!/bin/sh")})
    repo.commit({"web/old.txt": None}, "remove old.txt")        # None deletes
    with git_daemon(tmp_path) as daemon:
        url = daemon.url_for(repo)                               # git://127.0.0.1:<port>/app.git

Every command runs with an argument list, a fixed identity in the environment
and no global or system git configuration.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import port_open, wait_until

ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Executable:
    """A file committed with mode 100755."""

    content: str | bytes


@dataclass(frozen=True)
class Symlink:
    """A symbolic link committed with mode 120000, pointing at ``target``."""

    target: str


FileContent = str | bytes | Executable | Symlink | None


def git_environment() -> dict[str, str]:
    """The process environment with a fixed identity and no user or system config."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "Railyard Tests",
        "GIT_AUTHOR_EMAIL": "tests@railyard.invalid",
        "GIT_COMMITTER_NAME": "Railyard Tests",
        "GIT_COMMITTER_EMAIL": "tests@railyard.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }


def run_git(*args: str, git_dir: Path | None = None, stdin: bytes | None = None) -> str:
    """Run one git command and return its stripped standard output."""
    command = ["git"]
    if git_dir is not None:
        command.append(f"--git-dir={git_dir}")
    completed = subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        env=git_environment(),
        check=False,
        timeout=60,
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"git {' '.join(args)} failed ({completed.returncode}): "
            f"{completed.stderr.decode(errors='replace').strip()}"
        )
    return completed.stdout.decode().strip()


def has_object(git_dir: Path, sha: str) -> bool:
    """Whether the repository at ``git_dir`` holds the object ``sha``."""
    completed = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "-e", sha],
        capture_output=True,
        env=git_environment(),
        check=False,
        timeout=60,
    )
    return completed.returncode == 0


@dataclass(frozen=True)
class GitRepo:
    """A bare repository that tests push commits to."""

    path: Path

    @classmethod
    def create(cls, base: Path, name: str = "app") -> GitRepo:
        path = base / f"{name}.git"
        run_git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
        return cls(path)

    @property
    def url(self) -> str:
        """The ``file://`` URL of the repository."""
        return self.path.as_uri()

    def head(self, branch: str = "main") -> str | None:
        """The branch's commit, or None when the branch does not exist."""
        completed = subprocess.run(
            [
                "git",
                f"--git-dir={self.path}",
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/heads/{branch}^{{commit}}",
            ],
            capture_output=True,
            env=git_environment(),
            check=False,
            timeout=60,
        )
        return completed.stdout.decode().strip() if completed.returncode == 0 else None

    def commit(
        self,
        files: Mapping[str, FileContent],
        message: str = "change",
        *,
        branch: str = "main",
    ) -> str:
        """Commit ``files`` on top of ``branch`` (None deletes a path) and return the sha."""
        parent = self.head(branch)
        with tempfile.TemporaryDirectory(prefix="railyard-index-") as scratch:
            index = Path(scratch) / "index"
            read_tree = [parent] if parent else ["--empty"]
            self._git_with_index(index, "read-tree", *read_tree)
            lines = [self._index_line(path, content) for path, content in files.items()]
            self._git_with_index(
                index, "update-index", "--index-info", stdin="".join(lines).encode()
            )
            tree = self._git_with_index(index, "write-tree")
        parents = ["-p", parent] if parent else []
        sha = run_git("commit-tree", tree, *parents, "-m", message, git_dir=self.path)
        run_git("update-ref", f"refs/heads/{branch}", sha, parent or ZERO_SHA, git_dir=self.path)
        return sha

    def branch(self, name: str, from_: str = "main") -> str:
        """Create branch ``name`` at ``from_`` (a branch or a commit) and return its sha."""
        sha = run_git("rev-parse", "--verify", f"{from_}^{{commit}}", git_dir=self.path)
        run_git("update-ref", f"refs/heads/{name}", sha, ZERO_SHA, git_dir=self.path)
        return sha

    def delete_branch(self, name: str) -> None:
        run_git("update-ref", "-d", f"refs/heads/{name}", git_dir=self.path)

    def _index_line(self, path: str, content: FileContent) -> str:
        if content is None:
            return f"0 {ZERO_SHA}\t{path}\n"
        if isinstance(content, Symlink):
            mode, data = "120000", content.target.encode()
        elif isinstance(content, Executable):
            mode, data = "100755", _as_bytes(content.content)
        else:
            mode, data = "100644", _as_bytes(content)
        blob = run_git("hash-object", "-w", "--stdin", git_dir=self.path, stdin=data)
        return f"{mode} {blob}\t{path}\n"

    def _git_with_index(self, index: Path, *args: str, stdin: bytes | None = None) -> str:
        completed = subprocess.run(
            ["git", f"--git-dir={self.path}", *args],
            input=stdin,
            capture_output=True,
            env={**git_environment(), "GIT_INDEX_FILE": str(index)},
            check=False,
            timeout=60,
        )
        if completed.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} failed: {completed.stderr.decode(errors='replace')}"
            )
        return completed.stdout.decode().strip()


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class GitDaemon:
    """A running ``git daemon`` exporting every repository under ``base_path``."""

    base_path: Path
    port: int

    @property
    def base_url(self) -> str:
        return f"git://127.0.0.1:{self.port}/"

    def url_for(self, repo: GitRepo) -> str:
        return self.base_url + repo.path.relative_to(self.base_path).as_posix()


@contextmanager
def git_daemon(base_path: Path, *, attempts: int = 3) -> Iterator[GitDaemon]:
    """Serve the bare repositories under ``base_path`` on git://127.0.0.1:<free port>/."""
    for _ in range(attempts):
        port = free_port()
        process = _spawn_daemon(base_path, port)
        try:
            if _listening(process, port):
                yield GitDaemon(base_path, port)
                return
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    raise AssertionError(f"git daemon did not start after {attempts} attempts")


def _spawn_daemon(base_path: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--informative-errors",
            f"--base-path={base_path}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base_path),
        ],
        env=git_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _listening(process: subprocess.Popen[bytes], port: int) -> bool:
    """Whether the daemon came up; False when it exited (its port was taken meanwhile)."""
    wait_until(
        lambda: port_open("127.0.0.1", port) or process.poll() is not None,
        timeout=10,
        what=f"git daemon on port {port}",
    )
    return process.poll() is None
