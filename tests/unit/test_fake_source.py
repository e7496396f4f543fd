"""FakeSource keeps the rules of the real adapter that callers depend on."""

from __future__ import annotations

import io
import tarfile

import pytest

from controller.errors import SourceError, SourceUnavailable
from controller.source.fake import FakeSource

URL = "https://git.example.com/acme/shop.git"


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


async def test_resolve_follows_pushes_and_files_are_read_per_revision(source: FakeSource) -> None:
    first = source.push(URL, {"paas.yaml": "v: 1", "old.txt": "old"})
    assert await source.resolve(URL, "main") == first
    second = source.push(URL, {"paas.yaml": "v: 2", "old.txt": None})
    assert await source.remote_head(URL, "main") == second
    assert await source.resolve(URL, "main") == second

    assert await source.read_file(URL, first, "paas.yaml") == b"v: 1"
    assert await source.read_file(URL, second, "./paas.yaml") == b"v: 2"
    assert await source.read_file(URL, first, "old.txt") == b"old"
    assert await source.read_file(URL, second, "old.txt") is None


async def test_a_revision_cannot_be_read_before_it_is_resolved(source: FakeSource) -> None:
    sha = source.push(URL, {"paas.yaml": "v: 1"})
    with pytest.raises(SourceError, match="not in the cache"):
        await source.read_file(URL, sha, "paas.yaml")


async def test_missing_branches_and_unreachable_remotes_raise_like_git(
    source: FakeSource,
) -> None:
    source.push(URL, {"a": "1"})
    assert await source.remote_head(URL, "feature") is None
    with pytest.raises(SourceError, match="branch 'feature' not found"):
        await source.resolve(URL, "feature")

    source.unreachable.add(URL)
    with pytest.raises(SourceUnavailable):
        await source.resolve(URL, "main")


async def test_tree_id_depends_only_on_the_directory(source: FakeSource) -> None:
    first = source.push(URL, {"api/main.py": "1", "web/index.html": "1"})
    second = source.push(URL, {"web/index.html": "2"})
    await source.resolve(URL, "main")
    source.fetched.add((URL, first))

    assert await source.tree_id(URL, first, "api") == await source.tree_id(URL, second, "api/")
    assert await source.tree_id(URL, first, "web") != await source.tree_id(URL, second, "web")
    with pytest.raises(SourceError):
        await source.tree_id(URL, first, "worker")
    with pytest.raises(SourceError, match="directory"):
        await source.read_file(URL, first, "web")


async def test_archive_holds_the_directory_relative_to_it(source: FakeSource) -> None:
    sha = source.push(URL, {"web/Dockerfile": "FROM busybox", "web/a/b.txt": "b", "api/x": "x"})
    await source.resolve(URL, "main")

    with tarfile.open(fileobj=io.BytesIO(await source.archive(URL, sha, "web"))) as tar:
        assert tar.getnames() == ["Dockerfile", "a/b.txt"]
        dockerfile = tar.extractfile("Dockerfile")
        assert dockerfile is not None
        assert dockerfile.read() == b"FROM busybox"


async def test_branches_move_independently(source: FakeSource) -> None:
    main = source.push(URL, {"a": "main"})
    feature = source.push(URL, {"a": "feature"}, branch="feature")
    assert main != feature
    assert await source.resolve(URL, "main") == main
    assert await source.read_file(URL, await source.resolve(URL, "feature"), "a") == b"feature"
    source.delete_branch(URL, "feature")
    assert await source.remote_head(URL, "feature") is None
