"""Parse paas.yaml text into a ``Manifest``, turning every problem into a ``ManifestIssue``.

Top-level keys starting with ``x-`` are set aside (they hold YAML anchors,
as in Compose). Three passes, each reporting all it finds: YAML (syntax, duplicate keys,
alias bombs), the models (types, ranges, unknown keys), then the checks
across services. Nothing but ``ManifestError`` leaves this module.
"""

from __future__ import annotations

from pydantic import ValidationError as PydanticValidationError

from controller.errors import ManifestError, ManifestIssue
from controller.spec.checks import check_manifest
from controller.spec.issues import issues_from_validation
from controller.spec.models import Manifest
from controller.spec.source_map import Path, sort_issues
from controller.spec.yaml_loader import MAX_FILE_BYTES, load_yaml

MAX_MANIFEST_BYTES = MAX_FILE_BYTES


def keeps_text(path: Path) -> bool:
    """Env values, build args and command words keep the text as written (``8080``, ``true``)."""
    match path:
        case ("services", _, "env" | "command" | "entrypoint" | "release", _):
            return True
        case ("services", _, "build", "args", _) | ("previews", "env", _):
            return True
    return False


def parse_manifest(text: str | bytes, *, filename: str = "paas.yaml") -> Manifest:
    document, source = load_yaml(text, filename=filename, keep_text=keeps_text)
    if not isinstance(document, dict):
        issue = ManifestIssue(
            "", "expected a mapping with version: 1 and services", filename=filename
        )
        raise ManifestError([issue], filename=filename)
    document = {key: value for key, value in document.items() if not key.startswith("x-")}
    try:
        manifest = Manifest.model_validate(document)
    except PydanticValidationError as exc:
        issues = issues_from_validation(exc, Manifest, source.issue)
        raise ManifestError(issues, filename=filename) from None
    problems = check_manifest(manifest)
    if problems:
        issues = [source.issue(path, message) for path, message in problems]
        raise ManifestError(sort_issues(issues), filename=filename)
    return manifest.with_source(source)
