"""watch_directory on a real file system (inotify), and snapshot_directory's content ids."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.errors import SourceError, SourceUnavailable
from controller.source.watch import snapshot_directory, watch_directory
from tests.support import async_wait_until

DEBOUNCE_MS = 100
# Proving that a second call does NOT come needs a quiet window: absence cannot
# be polled for. Six debounce periods is far beyond one burst's end.
QUIET_SECONDS = DEBOUNCE_MS * 6 / 1000


@dataclass
class Watcher:
    directory: Path
    calls: int = 0
    failures_to_raise: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def on_change(self) -> None:
        self.calls += 1
        if self.failures_to_raise:
            self.failures_to_raise -= 1
            raise SourceUnavailable("queue down")

    async def called(self, times: int = 1) -> None:
        async def reached() -> bool:
            return self.calls >= times

        await async_wait_until(reached, timeout=15, what=f"{times} on_change call(s)")


@pytest.fixture
async def watcher(tmp_path: Path) -> AsyncIterator[Watcher]:
    directory = tmp_path / "project"
    directory.mkdir()
    state = Watcher(directory)
    task = asyncio.create_task(
        watch_directory(directory, state.on_change, debounce_ms=DEBOUNCE_MS, stop_event=state.stop)
    )
    try:
        # The watcher is ready once it reports a change: poke until it does, let
        # the pokes settle, and start every test from zero calls.
        probe = directory / "probe.txt"

        async def noticed() -> bool:
            probe.write_text(str(os.urandom(4)))
            return state.calls > 0

        await async_wait_until(noticed, timeout=15, interval=0.3, what="watcher ready")
        await asyncio.sleep(QUIET_SECONDS)
        state.calls = 0
        yield state
    finally:
        state.stop.set()
        await asyncio.wait_for(task, timeout=15)


async def test_a_burst_of_writes_calls_on_change_once(watcher: Watcher) -> None:
    for number in range(5):
        (watcher.directory / f"file{number}.txt").write_text("content")

    await watcher.called()
    await asyncio.sleep(QUIET_SECONDS)
    assert watcher.calls == 1


async def test_separate_edits_call_on_change_again(watcher: Watcher) -> None:
    (watcher.directory / "app.py").write_text("print(1)")
    await watcher.called(1)
    await asyncio.sleep(QUIET_SECONDS)
    (watcher.directory / "app.py").write_text("print(2)")
    await watcher.called(2)


async def test_noise_does_not_call_on_change(watcher: Watcher) -> None:
    for relative in (
        ".git/index",
        "__pycache__/app.cpython-311.pyc",
        ".app.py.swp",
        "4913",
        ".railyard/railyard.db",
        "notes.txt~",
    ):
        target = watcher.directory / relative
        target.parent.mkdir(exist_ok=True)
        target.write_text("noise")

    await asyncio.sleep(QUIET_SECONDS)
    assert watcher.calls == 0
    (watcher.directory / "paas.yaml").write_text("name: app")
    await watcher.called()


async def test_a_failing_on_change_does_not_stop_the_watch(watcher: Watcher) -> None:
    watcher.failures_to_raise = 1
    (watcher.directory / "a.txt").write_text("1")
    await watcher.called(1)
    await asyncio.sleep(QUIET_SECONDS)
    (watcher.directory / "a.txt").write_text("2")
    await watcher.called(2)


async def test_watching_a_missing_directory_is_a_source_error(tmp_path: Path) -> None:
    async def ignore() -> None:
        return None

    with pytest.raises(SourceError, match="not a directory"):
        await watch_directory(tmp_path / "absent", ignore)


def write_tree(directory: Path, files: dict[str, str]) -> Path:
    for relative, content in files.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return directory


def test_snapshot_is_the_same_for_the_same_content_anywhere(tmp_path: Path) -> None:
    files = {"paas.yaml": "name: app", "web/index.html": "<p>hi</p>"}
    one = snapshot_directory(write_tree(tmp_path / "one", files))
    two = snapshot_directory(write_tree(tmp_path / "two", files))

    assert one == two
    assert one.startswith("local-")
    assert len(one) == len("local-") + 40


def test_snapshot_changes_with_content_names_and_modes(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", {"paas.yaml": "name: app", "run.sh": "echo"})
    seen = {snapshot_directory(tree)}

    (tree / "paas.yaml").write_text("name: app2")
    seen.add(snapshot_directory(tree))
    (tree / "run.sh").chmod(0o755)
    seen.add(snapshot_directory(tree))
    (tree / "run.sh").rename(tree / "start.sh")
    seen.add(snapshot_directory(tree))
    (tree / "current").symlink_to("start.sh")
    seen.add(snapshot_directory(tree))

    assert len(seen) == 5


def test_snapshot_ignores_what_the_watcher_ignores(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "tree", {"paas.yaml": "name: app"})
    before = snapshot_directory(tree)

    write_tree(tree, {".git/HEAD": "ref: x", ".railyard/db": "x", ".paas.yaml.swp": "x"})

    assert snapshot_directory(tree) == before
