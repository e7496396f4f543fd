"""The repository paths a manifest points at, for checks that need the tree.

The parser already refuses absolute paths and ``..``; only the repository can
tell whether a path goes through a symlink that leads outside it. The source
layer calls ``check_paths`` with a predicate that answers that.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

from controller.errors import ManifestError
from controller.spec.models import Manifest
from controller.spec.source_map import Path, SourceMap


def repository_paths(manifest: Manifest) -> list[tuple[Path, str]]:
    """Every (field path, repository path) the manifest refers to."""
    found: list[tuple[Path, str]] = []
    if manifest.compose is not None:
        found.append((("compose",), manifest.compose))
    for name, service in manifest.service_specs().items():
        if service.build is None:
            continue
        context = posixpath.normpath(service.build.context)
        found.append((("services", name, "build", "context"), context))
        dockerfile = posixpath.normpath(posixpath.join(context, service.build.dockerfile))
        found.append((("services", name, "build", "dockerfile"), dockerfile))
    return found


def check_paths(manifest: Manifest, is_symlink_escape: Callable[[str], bool]) -> None:
    """Raise ``ManifestError`` for each path that leaves the repository through a symlink."""
    source = manifest.source or SourceMap("paas.yaml")
    issues = [
        source.issue(field, f"{path} leads outside the repository (through a symlink)")
        for field, path in repository_paths(manifest)
        if is_symlink_escape(path)
    ]
    if issues:
        raise ManifestError(issues, filename=source.filename)
