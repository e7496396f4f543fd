"""Working trees as a Source (``dir:///abs/path``): content ids, reads, build contexts, routing."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from controller.api.schemas import check_repo_url
from controller.errors import SourceError, SourceUnavailable
from controller.source.fake import FakeSource
from controller.source.local import LocalTreeSource
from controller.source.routing import (
    RoutingSource,
    is_working_tree,
    working_tree_path,
    working_tree_url,
)
from controller.source.watch import snapshot_directory

DOCKERFILE = 'FROM busybox:stable\nCOPY www /www\nCMD ["httpd", "-f", "-h", "/www"]\n'


def write(directory: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    directory = tmp_path / "my app"
    write(
        directory,
        {
            "paas.yaml": "version: 1\n",
            "web/Dockerfile": DOCKERFILE,
            "web/www/index.html": "v1\n",
            "web/run.sh": "#!/bin/sh\n",
            "docs/README": "docs\n",
        },
    )
    (directory / "web/run.sh").chmod(0o755)
    return directory


@pytest.fixture
def url(tree: Path) -> str:
    return working_tree_url(tree)


@pytest.fixture
def source() -> LocalTreeSource:
    return LocalTreeSource()


def members(tar_bytes: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return {member.name: member for member in tar.getmembers()}


def member_text(tar_bytes: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None
        return extracted.read().decode()


# -- the dir:// scheme ---------------------------------------------------------------------


def test_a_working_tree_url_round_trips_any_absolute_path(tmp_path: Path) -> None:
    directory = tmp_path / "with space" / "100%"
    url = working_tree_url(directory)
    assert url.startswith("dir:///") and " " not in url
    assert working_tree_path(url) == directory
    assert is_working_tree(url) and is_working_tree("DIR:///srv/app")
    assert not is_working_tree("file:///srv/app.git")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("dir://host/srv/app", "no host"),
        ("dir://srv/app", "no host"),
        ("dir:///", "root"),
        ("dir:///srv/../etc", "'..'"),
        ("dir:///srv/app?x=1", "no host, query"),
        ("dir:///srv/app%00", "absolute path"),
    ],
)
def test_malformed_working_tree_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(SourceError, match=reason):
        working_tree_path(url)
    with pytest.raises(ValueError, match=reason):
        check_repo_url(url)


def test_the_api_accepts_working_tree_urls_and_still_names_them_when_refusing() -> None:
    assert check_repo_url("dir:///home/dev/shop") == "dir:///home/dev/shop"
    with pytest.raises(ValueError, match=r"dir:///absolute/path"):
        check_repo_url("ftp://example.com/shop")


# -- resolve: the content id of the tree ---------------------------------------------------


async def test_the_revision_changes_with_an_edit_and_not_with_noise(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    first = await source.resolve(url, "main")
    assert first.startswith("local-") and first == snapshot_directory(tree)
    assert await source.remote_head(url, "any-branch") == first, "the branch is ignored"

    write(tree, {".git/index": "x", "web/__pycache__/a.pyc": "x", "web/.index.html.swp": "x"})
    (tree / "web/www/index.html").touch()
    assert await source.resolve(url, "main") == first

    (tree / "web/www/index.html").write_text("v2\n")
    assert await source.resolve(url, "main") != first


async def test_a_missing_working_tree_is_a_source_error(
    source: LocalTreeSource, tmp_path: Path
) -> None:
    url = working_tree_url(tmp_path / "absent")
    with pytest.raises(SourceError, match="not a directory"):
        await source.resolve(url, "main")
    with pytest.raises(SourceError, match="not a directory"):
        await source.read_file(url, "local-0", "paas.yaml")


# -- read_file: the file as it is on disk now ------------------------------------------------


async def test_read_file_reads_the_current_file_whatever_the_revision(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    revision = await source.resolve(url, "main")
    assert await source.read_file(url, revision, "paas.yaml") == b"version: 1\n"
    (tree / "paas.yaml").write_text("version: 1\n# edited\n")
    assert await source.read_file(url, revision, "./paas.yaml") == b"version: 1\n# edited\n"


async def test_read_file_answers_none_for_what_is_not_in_the_tree(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    write(tree, {".git/config": "[core]"})
    assert await source.read_file(url, "local-0", "missing.yaml") is None
    assert await source.read_file(url, "local-0", "paas.yaml/below") is None
    assert await source.read_file(url, "local-0", ".git/config") is None, "ignored like .git"


async def test_read_file_refuses_directories_and_paths_leaving_the_tree(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    (tree.parent / "secret.txt").write_text("secret")
    (tree / "escape.yaml").symlink_to(tree.parent / "secret.txt")
    (tree / "inside.yaml").symlink_to("paas.yaml")

    with pytest.raises(SourceError, match="is a directory"):
        await source.read_file(url, "local-0", "web")
    with pytest.raises(SourceError, match="outside the working tree"):
        await source.read_file(url, "local-0", "../secret.txt")
    with pytest.raises(SourceError, match="outside the working tree"):
        await source.read_file(url, "local-0", "escape.yaml")
    assert await source.read_file(url, "local-0", "inside.yaml") == b"version: 1\n"


# -- tree_id: the content id of a build context -------------------------------------------


async def test_tree_id_follows_its_directory_only(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    revision = await source.resolve(url, "main")
    assert await source.tree_id(url, revision, ".") == revision, "same rules as the snapshot"
    web = await source.tree_id(url, revision, "web")

    (tree / "docs/README").write_text("more docs\n")
    write(tree, {"web/node_modules/x.js": "x", "web/.git/HEAD": "x"})
    assert await source.tree_id(url, revision, "web/") == web

    (tree / "web/run.sh").chmod(0o644)
    assert await source.tree_id(url, revision, "web") != web, "the executable bit counts"


async def test_tree_id_refuses_a_missing_or_escaping_directory(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    (tree / "elsewhere").symlink_to(tree.parent, target_is_directory=True)
    with pytest.raises(SourceError, match="not found"):
        await source.tree_id(url, "local-0", "api")
    with pytest.raises(SourceError, match="outside the working tree"):
        await source.tree_id(url, "local-0", "elsewhere")
    with pytest.raises(SourceError, match="outside the working tree"):
        await source.tree_id(url, "local-0", "..")


# -- archive: the build context as a tar ------------------------------------------------------


async def test_archive_packs_the_directory_without_ignored_paths(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    write(tree, {"web/.git/HEAD": "x", "web/__pycache__/a.pyc": "x", "web/www/.a.swp": "x"})
    (tree / "web/empty").mkdir()
    (tree / "web/latest.html").symlink_to("www/index.html")

    tar = await source.archive(url, "local-0", "web")

    found = members(tar)
    assert sorted(found) == [
        "Dockerfile",
        "latest.html",
        "run.sh",
        "www",
        "www/index.html",
    ]
    assert found["run.sh"].mode == 0o755 and found["Dockerfile"].mode == 0o644
    assert found["latest.html"].issym() and found["latest.html"].linkname == "www/index.html"
    assert {m.mtime for m in found.values()} == {0} and {m.uid for m in found.values()} == {0}
    assert member_text(tar, "www/index.html") == "v1\n"


async def test_archive_is_deterministic(source: LocalTreeSource, tree: Path, url: str) -> None:
    first = await source.archive(url, "local-0", ".")
    os.utime(tree / "web/www/index.html", (1, 1))
    assert await source.archive(url, "local-0", ".") == first


async def test_archive_allows_links_within_the_tree_and_refuses_the_rest(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    (tree / "web/docs").symlink_to("../docs", target_is_directory=True)
    assert members(await source.archive(url, "local-0", "web"))["docs"].issym()

    (tree / "web/passwd").symlink_to("/etc/passwd")
    with pytest.raises(SourceError, match="points outside the working tree"):
        await source.archive(url, "local-0", "web")
    (tree / "web/passwd").unlink()
    (tree / "web/up").symlink_to("../../..")
    with pytest.raises(SourceError, match="points outside the working tree"):
        await source.archive(url, "local-0", "web")


async def test_archive_refuses_a_context_over_the_size_cap(tree: Path, url: str) -> None:
    (tree / "web/big.bin").write_bytes(b"\0" * 4096)
    small = LocalTreeSource(max_archive_bytes=2048)
    with pytest.raises(SourceError, match="larger than"):
        await small.archive(url, "local-0", "web")


async def test_a_save_between_tree_id_and_archive_is_not_built_under_the_old_tag(
    source: LocalTreeSource, tree: Path, url: str
) -> None:
    revision = await source.resolve(url, "main")
    await source.tree_id(url, revision, "web")
    assert member_text(await source.archive(url, revision, "web"), "www/index.html") == "v1\n"

    (tree / "web/www/index.html").write_text("saved mid-deploy\n")
    with pytest.raises(SourceUnavailable, match="changed while deploying"):
        await source.archive(url, revision, "web")

    newer = await source.resolve(url, "main")
    await source.tree_id(url, newer, "web")
    tar = await source.archive(url, newer, "web")
    assert member_text(tar, "www/index.html") == "saved mid-deploy\n"


# -- routing by scheme ---------------------------------------------------------------------------


async def test_routing_sends_working_trees_to_disk_and_everything_else_to_git(
    tree: Path, url: str
) -> None:
    git = FakeSource()
    git_url = "https://git.example.com/acme/shop.git"
    sha = git.push(git_url, {"paas.yaml": "from git"})
    source = RoutingSource(git, LocalTreeSource())

    assert await source.resolve(git_url, "main") == sha
    assert await source.read_file(git_url, sha, "paas.yaml") == b"from git"
    assert await source.remote_head(git_url, "main") == sha

    revision = await source.resolve(url, "main")
    assert revision == snapshot_directory(tree)
    assert await source.remote_head(url.replace("dir://", "DIR://"), "main") == revision
    assert await source.read_file(url, revision, "paas.yaml") == b"version: 1\n"
    assert await source.tree_id(url, revision, ".") == revision
    assert "www/index.html" in members(await source.archive(url, revision, "web"))
    assert (url, revision) not in git.fetched
