"""Parse paas.yaml text into a ``Manifest``, turning every problem into a ``ManifestIssue``."""

from __future__ import annotations

import yaml
from pydantic import ValidationError as PydanticValidationError

from controller.errors import ManifestError, ManifestIssue
from controller.spec.models import Manifest

MAX_MANIFEST_BYTES = 1024 * 1024


def parse_manifest(text: str | bytes, *, filename: str = "paas.yaml") -> Manifest:
    if len(text) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            [ManifestIssue("", "file is larger than 1 MiB", filename=filename)], filename=filename
        )
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        issue = ManifestIssue(
            "",
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            filename=filename,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
        raise ManifestError([issue], filename=filename) from exc
    if not isinstance(document, dict):
        raise ManifestError(
            [ManifestIssue("", "expected a mapping at the top level", filename=filename)],
            filename=filename,
        )
    try:
        return Manifest.model_validate(document)
    except PydanticValidationError as exc:
        issues = [
            ManifestIssue(
                ".".join(str(part) for part in error["loc"]),
                error["msg"].removeprefix("Value error, "),
                filename=filename,
            )
            for error in exc.errors()
        ]
        raise ManifestError(issues, filename=filename) from exc
