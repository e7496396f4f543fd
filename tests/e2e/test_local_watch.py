"""The developer's inner loop: ``railyard apps add NAME --path DIR`` deploys a working tree
(no git anywhere), and saving a file redeploys it."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from controller.source.watch import snapshot_directory
from tests.e2e.harness import Railyard
from tests.e2e.test_push_to_deploy import app_files
from tests.support import wait_until

SAVES = 5


def working_tree(base: Path, app: str, body: str) -> Path:
    directory = base / "worktree"
    for relative, content in app_files(app, body).items():
        assert content is not None
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return directory


def serves(railyard: Railyard, host: str, body: str) -> bool:
    return railyard.edge_text(host) == body


def unboxed(text: str) -> str:
    """A CLI error as one line: without the frame and line breaks of the terminal's box."""
    return " ".join(text.replace("\u2502", " ").split())


def test_saving_a_file_in_a_working_tree_redeploys_it(
    railyard: Railyard, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    directory = working_tree(tmp_path, app_name, "v1")

    created = railyard.cli_json("apps", "add", app_name, "--path", str(directory))
    assert created["repo_url"] == directory.resolve().as_uri().replace("file://", "dir://", 1)
    wait_until(lambda: railyard.edge_text(host) == "v1\n", timeout=90, what="v1 served")

    # The resync (every 5 s here) deploys a changed tree too, and may take a save before
    # the watcher does (or before the new app's watch has started); then the record says
    # "resync". So save until one save is deployed by the watcher: each must be served.
    triggers: list[str] = []
    for version in range(2, 2 + SAVES):
        body = f"v{version}\n"
        (directory / "www/index.html").write_text(body)
        wait_until(partial(serves, railyard, host, body), timeout=60, what=f"{body!r} served")
        # The content id stands where a commit id would; the routes switch before the old
        # replica is drained, so wait for the record to be final.
        revision = snapshot_directory(directory)
        deployment = railyard.wait_for_deployment(app_name, revision)
        assert deployment["status"] == "succeeded"
        triggers.append(deployment["trigger"])
        if deployment["trigger"] == "watch":
            break
    assert triggers[-1] == "watch", f"no save was deployed by the watcher: {triggers}"
    [production] = railyard.cli_json("status", app_name)["environments"]
    assert production["revision"] == revision


def test_apps_add_refuses_a_missing_directory_or_both_sources(
    railyard: Railyard, tmp_path: Path
) -> None:
    absent = str(tmp_path / "absent")
    missing = railyard.cli("apps", "add", "nowhere", "--path", absent, check=False)
    assert missing.returncode != 0 and "is not a directory" in unboxed(missing.stderr)

    both = railyard.cli(
        "apps", "add", "both", "--path", str(tmp_path), "--repo", "file:///x.git", check=False
    )
    assert both.returncode != 0
    assert "exactly one of --repo URL or --path DIR" in unboxed(both.stderr)
    assert all(app["name"] not in ("nowhere", "both") for app in railyard.cli_json("apps", "list"))
