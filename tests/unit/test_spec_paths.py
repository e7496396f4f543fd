"""Paths into the repository, for the symlink check only the tree can make."""

from __future__ import annotations

import pytest

from controller.errors import ManifestError
from controller.spec import parse_manifest
from controller.spec.paths import check_paths, repository_paths

MANIFEST = """\
version: 1
services:
  web:
    build: {context: ./web, dockerfile: docker/Dockerfile}
  api:
    build: api
  db:
    image: postgres
"""


def test_every_build_path_is_listed() -> None:
    paths = repository_paths(parse_manifest(MANIFEST))
    assert paths == [
        (("services", "web", "build", "context"), "web"),
        (("services", "web", "build", "dockerfile"), "web/docker/Dockerfile"),
        (("services", "api", "build", "context"), "api"),
        (("services", "api", "build", "dockerfile"), "api/Dockerfile"),
    ]


def test_the_compose_file_is_listed() -> None:
    manifest = parse_manifest("version: 1\ncompose: deploy/compose.yaml\n")
    assert repository_paths(manifest) == [(("compose",), "deploy/compose.yaml")]


def test_a_symlink_escape_is_reported_where_the_path_is_written() -> None:
    manifest = parse_manifest(MANIFEST)
    with pytest.raises(ManifestError) as caught:
        check_paths(manifest, lambda path: path.startswith("web/docker"))
    (issue,) = caught.value.issues
    assert (issue.path, issue.line) == ("services.web.build.dockerfile", 4)
    assert "leads outside the repository" in issue.message


def test_paths_inside_pass() -> None:
    check_paths(parse_manifest(MANIFEST), lambda path: False)
