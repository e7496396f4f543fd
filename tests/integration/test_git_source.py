"""GitSource against real remotes: file:// URLs, plain paths, git daemon, a refusing HTTP server."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import socket
import tarfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from controller.errors import SourceError, SourceUnavailable
from controller.source.git import GitSource, redact_url
from tests.gitrepo import Executable, GitRepo, Symlink, free_port, git_daemon, has_object


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[GitSource]:
    git_source = GitSource(tmp_path / "cache", timeout_seconds=10)
    try:
        yield git_source
    finally:
        git_source.close()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo.create(tmp_path / "remotes")


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {member.name: member for member in tar.getmembers()}


def file_bytes(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None
        return extracted.read()


# -- resolve and remote_head ----------------------------------------------------


async def test_resolve_returns_the_pushed_commit_and_follows_new_pushes(
    source: GitSource, repo: GitRepo
) -> None:
    first = repo.commit({"paas.yaml": "name: one\n"}, "first")
    assert await source.resolve(repo.url, "main") == first

    second = repo.commit({"paas.yaml": "name: two\n"}, "second")
    assert await source.resolve(repo.url, "main") == second


async def test_resolve_accepts_a_plain_local_path(source: GitSource, repo: GitRepo) -> None:
    sha = repo.commit({"a.txt": "a"})
    assert await source.resolve(str(repo.path), "main") == sha


async def test_remote_head_sees_a_push_without_fetching_it(
    source: GitSource, repo: GitRepo
) -> None:
    first = repo.commit({"a.txt": "1"})
    await source.resolve(repo.url, "main")
    second = repo.commit({"a.txt": "2"})

    assert await source.remote_head(repo.url, "main") == second
    cache = source.cache_path(repo.url)
    assert has_object(cache, first)
    assert not has_object(cache, second)


async def test_remote_head_is_none_for_a_branch_the_remote_lacks(
    source: GitSource, repo: GitRepo
) -> None:
    repo.commit({"a.txt": "1"})
    assert await source.remote_head(repo.url, "feature") is None


async def test_resolve_follows_each_branch_separately(source: GitSource, repo: GitRepo) -> None:
    base = repo.commit({"a.txt": "main"})
    repo.branch("feature", from_="main")
    feature = repo.commit({"a.txt": "feature"}, branch="feature")

    assert await source.resolve(repo.url, "main") == base
    assert await source.resolve(repo.url, "feature") == feature
    assert await source.read_file(repo.url, feature, "a.txt") == b"feature"


async def test_a_missing_branch_is_a_source_error_naming_it(
    source: GitSource, repo: GitRepo
) -> None:
    repo.commit({"a.txt": "1"})
    with pytest.raises(SourceError, match="branch 'nope' not found"):
        await source.resolve(repo.url, "nope")


async def test_a_deleted_branch_is_missing_even_though_it_was_fetched_before(
    source: GitSource, repo: GitRepo
) -> None:
    repo.commit({"a.txt": "1"})
    repo.branch("feature")
    await source.resolve(repo.url, "feature")
    repo.delete_branch("feature")

    with pytest.raises(SourceError, match="branch 'feature' not found"):
        await source.resolve(repo.url, "feature")


async def test_concurrent_resolves_of_one_repository_agree(
    source: GitSource, repo: GitRepo
) -> None:
    sha = repo.commit({"a.txt": "1"})
    results = await asyncio.gather(*(source.resolve(repo.url, "main") for _ in range(4)))
    assert results == [sha] * 4


async def test_an_invalid_branch_name_is_refused(source: GitSource, repo: GitRepo) -> None:
    repo.commit({"a.txt": "1"})
    with pytest.raises(SourceError, match="invalid branch name"):
        await source.resolve(repo.url, "main:refs/heads/evil")


async def test_a_missing_repository_is_a_source_error(source: GitSource, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="repository not found"):
        await source.resolve((tmp_path / "absent.git").as_uri(), "main")


# -- reads from the cache ---------------------------------------------------------


async def test_read_file_returns_the_content_at_each_revision(
    source: GitSource, repo: GitRepo
) -> None:
    first = repo.commit({"paas.yaml": "v: 1\n", "old.txt": "old"})
    second = repo.commit({"paas.yaml": "v: 2\n", "old.txt": None})
    await source.resolve(repo.url, "main")

    assert await source.read_file(repo.url, first, "paas.yaml") == b"v: 1\n"
    assert await source.read_file(repo.url, second, "paas.yaml") == b"v: 2\n"
    assert await source.read_file(repo.url, first, "old.txt") == b"old"
    assert await source.read_file(repo.url, second, "old.txt") is None
    assert await source.read_file(repo.url, second, "missing/file") is None


async def test_read_file_refuses_a_directory_and_an_unfetched_revision(
    source: GitSource, repo: GitRepo
) -> None:
    first = repo.commit({"web/app.py": "print()"})
    await source.resolve(repo.url, "main")
    later = repo.commit({"web/app.py": "print(2)"})

    with pytest.raises(SourceError, match="directory"):
        await source.read_file(repo.url, first, "web")
    with pytest.raises(SourceError, match="not in the cache"):
        await source.read_file(repo.url, later, "web/app.py")
    with pytest.raises(SourceError, match="outside the repository"):
        await source.read_file(repo.url, first, "../secrets")


async def test_tree_id_changes_only_when_the_directory_changes(
    source: GitSource, repo: GitRepo
) -> None:
    first = repo.commit({"api/main.py": "1", "web/index.html": "<p>1</p>"})
    second = repo.commit({"web/index.html": "<p>2</p>"})
    await source.resolve(repo.url, "main")

    async def tree(revision: str, path: str) -> str:
        return await source.tree_id(repo.url, revision, path)

    assert await tree(first, "api") == await tree(second, "./api/")
    assert await tree(first, "web") != await tree(second, "web")
    assert await tree(first, ".") != await tree(second, "")
    with pytest.raises(SourceError, match="not found"):
        await source.tree_id(repo.url, first, "worker")
    with pytest.raises(SourceError, match="not a directory"):
        await source.tree_id(repo.url, first, "api/main.py")


async def test_archive_holds_the_directory_with_modes_and_links(
    source: GitSource, repo: GitRepo
) -> None:
    sha = repo.commit(
        {
            "web/Dockerfile": "FROM busybox:stable\n",
            "web/bin/start.sh": Executable("#!/bin/sh\necho hi\n"),
            "web/static/index.html": "<p>hi</p>",
            "web/escape": Symlink("../../../etc/passwd"),
            "api/main.py": "not in the web context",
        }
    )
    await source.resolve(repo.url, "main")

    archive = await source.archive(repo.url, sha, "web")
    entries = members(archive)

    assert sorted(entries) == [
        "Dockerfile",
        "bin",
        "bin/start.sh",
        "escape",
        "static",
        "static/index.html",
    ]
    assert entries["bin/start.sh"].mode == 0o755
    assert entries["Dockerfile"].mode == 0o644
    assert entries["bin"].isdir()
    assert entries["escape"].issym()
    assert entries["escape"].linkname == "../../../etc/passwd"
    assert {member.mtime for member in entries.values()} == {0}
    assert file_bytes(archive, "bin/start.sh") == b"#!/bin/sh\necho hi\n"
    assert await source.archive(repo.url, sha, "web") == archive


async def test_archive_of_the_root_holds_every_file(source: GitSource, repo: GitRepo) -> None:
    sha = repo.commit({"Dockerfile": "FROM busybox:stable\n", "src/app.sh": "echo"})
    await source.resolve(repo.url, "main")

    assert set(members(await source.archive(repo.url, sha, "."))) == {
        "Dockerfile",
        "src",
        "src/app.sh",
    }


async def test_archive_larger_than_the_cap_is_refused(repo: GitRepo, tmp_path: Path) -> None:
    small = GitSource(tmp_path / "cache", max_archive_bytes=64 * 1024)
    try:
        sha = repo.commit({"big.bin": b"x" * (128 * 1024)})
        await small.resolve(repo.url, "main")
        with pytest.raises(SourceError, match="larger than"):
            await small.archive(repo.url, sha, "")
    finally:
        small.close()


# -- network: git daemon, unreachable remotes, timeouts, credentials --------------


async def test_git_daemon_remote_works_end_to_end(
    source: GitSource, tmp_path: Path, repo: GitRepo
) -> None:
    first = repo.commit({"paas.yaml": "name: demo\n"})
    with git_daemon(tmp_path / "remotes") as daemon:
        url = daemon.url_for(repo)
        assert await source.remote_head(url, "main") == first
        assert await source.resolve(url, "main") == first
        assert await source.read_file(url, first, "paas.yaml") == b"name: demo\n"

        second = repo.commit({"paas.yaml": "name: demo2\n"})
        assert await source.resolve(url, "main") == second

        with pytest.raises(SourceError, match="repository not found"):
            await source.resolve(daemon.base_url + "absent.git", "main")


async def test_an_unreachable_remote_is_unavailable_quickly(source: GitSource) -> None:
    url = f"git://127.0.0.1:{free_port()}/x.git"
    started = time.monotonic()
    with pytest.raises(SourceUnavailable, match=re.escape(f"remote unreachable: {url}")):
        await source.resolve(url, "main")
    assert time.monotonic() - started < 5


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


async def test_a_remote_that_never_answers_times_out(tmp_path: Path, silent_server: int) -> None:
    impatient = GitSource(tmp_path / "cache", timeout_seconds=0.5)
    url = f"git://127.0.0.1:{silent_server}/x.git"
    try:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match=re.escape("no answer within 0.5s")):
            await impatient.resolve(url, "main")
        assert time.monotonic() - started < 3
    finally:
        impatient.close()


class RefusingHandler(BaseHTTPRequestHandler):
    """Answers every request with 401, remembering the Authorization headers it saw."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def refusing_server() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (RefusingHandler,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_rejected_credentials_fail_without_revealing_them(
    source: GitSource, refusing_server: tuple[int, list[str]]
) -> None:
    port, seen = refusing_server
    url = f"http://deploy:s3cret-token@127.0.0.1:{port}/app.git"

    with pytest.raises(SourceError) as caught:
        await source.resolve(url, "main")

    redacted = f"http://deploy:***@127.0.0.1:{port}/app.git"
    assert str(caught.value) == f"authentication failed for {redacted}"
    assert "Basic " + base64.b64encode(b"deploy:s3cret-token").decode() in seen
    assert len(seen) <= 3  # offered once, not replayed
    chain: BaseException | None = caught.value
    while chain is not None:
        assert "s3cret" not in str(chain)
        chain = chain.__cause__
    assert "s3cret" not in (source.cache_path(url) / "config").read_text()


async def test_the_credentials_callable_supplies_what_the_url_lacks(
    tmp_path: Path, refusing_server: tuple[int, list[str]]
) -> None:
    port, seen = refusing_server
    asked: list[str] = []

    def credentials(url: str) -> tuple[str, str]:
        asked.append(url)
        return "bot", "provided-token"

    with_credentials = GitSource(tmp_path / "cache", credentials=credentials)
    url = f"http://127.0.0.1:{port}/app.git"
    try:
        with pytest.raises(SourceError, match=re.escape(f"authentication failed for {url}")):
            await with_credentials.remote_head(url, "main")
    finally:
        with_credentials.close()
    assert asked == [url]
    assert "Basic " + base64.b64encode(b"bot:provided-token").decode() in seen


async def test_an_unreachable_remote_with_credentials_is_redacted(source: GitSource) -> None:
    url = f"https://ci:tok3n@127.0.0.1:{free_port()}/x.git"
    with pytest.raises(SourceUnavailable) as caught:
        await source.remote_head(url, "main")
    assert "tok3n" not in str(caught.value)
    assert "https://ci:***@127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:token@example.com/a.git", "https://user:***@example.com/a.git"),
        ("https://ghp_abc123@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("https://u:p@ss@example.com/a.git", "https://u:***@example.com/a.git"),
        ("ssh://git@example.com/o/r.git", "ssh://git@example.com/o/r.git"),
        ("git@example.com:o/r.git", "git@example.com:o/r.git"),
        ("/srv/git/app.git", "/srv/git/app.git"),
        ("clone https://a:b@h/x failed", "clone https://a:***@h/x failed"),
    ],
)
def test_redact_url_masks_secrets_only(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
