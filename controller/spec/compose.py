"""``compose: docker-compose.yml`` — take the services from a Compose file in the repository.

``parse_manifest`` only sees paas.yaml's text, so a Compose manifest comes back
with ``compose`` set and no services; ``load_compose(manifest, read_file)``
reads the Compose file through the given reader (pure: the caller decides
where files come from) and returns the manifest with its services filled in,
paas.yaml's top-level ``routes`` attached to them. Problems found in the
Compose file name that file, its line and column, and the Compose key.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from controller.errors import ManifestError, ManifestIssue
from controller.spec.checks import check_manifest
from controller.spec.compose_service import Problem, Translation, translate_service, unsupported
from controller.spec.fields import show
from controller.spec.issues import issues_from_validation
from controller.spec.models import Manifest
from controller.spec.source_map import Locator, Path, SourceMap, sort_issues
from controller.spec.yaml_loader import load_yaml

ReadFile = Callable[[str], bytes | None]

SUPPORTED_TOP_LEVEL_KEYS = frozenset({"services", "volumes", "networks", "name", "version"})
_VARIABLE = re.compile(r"\$(\{[^}]*\}?|[A-Za-z_][A-Za-z0-9_]*)")


def load_compose(manifest: Manifest, read_file: ReadFile) -> Manifest:
    """``manifest`` with its services taken from its Compose file (unchanged without one)."""
    if manifest.compose is None:
        return manifest
    paas: Locator = manifest.source or SourceMap("paas.yaml")
    path = manifest.compose
    text = read_file(path)
    if text is None:
        issue = paas.issue(("compose",), f"{path} is not in the repository")
        raise ManifestError([issue], filename=paas.filename)
    document, source = load_yaml(text, filename=path, keep_text=_keeps_text)
    locator = _Locator(paas, source)
    if not isinstance(document, dict):
        issue = source.issue((), "expected a Compose file with services")
        raise ManifestError([issue], filename=paas.filename)
    problems: list[Problem] = []
    document = _interpolate(document, (), problems)
    problems.extend(_top_level_problems(document))
    services = document.get("services")
    translations: dict[str, Translation] = {}
    if "services" not in document:
        problems.append(((), 'a Compose file for Railyard needs "services"'))
    elif not isinstance(services, dict):
        problems.append((("services",), "expected a mapping of services"))
    elif not services:
        problems.append((("services",), "declare at least one service"))
    else:
        compose_dir = posixpath.dirname(path)
        for name, body in services.items():
            translations[name] = translate_service(str(name), body, compose_dir)
    paas_problems = [
        (("routes", name), f"{show(name)} is not a service of {path}")
        for name in manifest.routes or {}
        if name not in translations
    ]
    for translation in translations.values():
        problems.extend(translation.problems)
        locator.origins.update(translation.origins)
    if problems or paas_problems:
        issues = [source.issue(p, m, at_key=m.startswith("Compose key")) for p, m in problems]
        issues += [paas.issue(p, m, at_key=True) for p, m in paas_problems]
        raise ManifestError(sort_issues(issues), filename=paas.filename)
    return _validate(manifest, translations, locator)


def _validate(
    manifest: Manifest, translations: Mapping[str, Translation], locator: _Locator
) -> Manifest:
    services: dict[str, Any] = {}
    for name, translation in translations.items():
        routes = (manifest.routes or {}).get(name)
        services[name] = {**translation.spec, "routes": routes} if routes else translation.spec
    document = {"version": 1, "services": services, "previews": manifest.previews}
    try:
        resolved = Manifest.model_validate(document)
    except PydanticValidationError as exc:
        issues = issues_from_validation(exc, Manifest, locator.issue)
        raise ManifestError(issues, filename=locator.paas.filename) from None
    problems = check_manifest(resolved)
    if problems:
        issues = [locator.issue(path, message) for path, message in problems]
        raise ManifestError(sort_issues(issues), filename=locator.paas.filename)
    return resolved.with_source(locator)


class _Locator:
    """Places a problem of the resolved manifest in the file that caused it."""

    def __init__(self, paas: Locator, compose: SourceMap) -> None:
        self.paas = paas
        self.compose = compose
        self.origins: dict[Path, Path] = {}

    @property
    def filename(self) -> str:
        return self.paas.filename

    def issue(self, path: Path, message: str, *, at_key: bool = False) -> ManifestIssue:
        if path[:1] == ("previews",):
            return self.paas.issue(path, message, at_key=at_key)
        if path[:1] == ("services",) and path[2:3] == ("routes",):
            return self.paas.issue(("routes", path[1], *path[3:]), message, at_key=at_key)
        for end in range(len(path), 0, -1):
            origin = self.origins.get(path[:end])
            if origin is not None:
                return self.compose.issue((*origin, *path[end:]), message, at_key=at_key)
        return self.compose.issue(path, message, at_key=at_key)


def _keeps_text(path: Path) -> bool:
    """Compose is read as YAML 1.2: ``22:22`` is a port mapping, not the base-60 number 1342."""
    match path:
        case ("services", _, "environment" | "command" | "entrypoint" | "ports" | "expose", _):
            return True
        case ("services", _, "build", "args", _):
            return True
    return False


def _top_level_problems(document: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for key, value in document.items():
        if key.startswith("x-"):
            continue
        if key not in SUPPORTED_TOP_LEVEL_KEYS:
            problems.append(((key,), unsupported(key)))
        elif key in ("volumes", "networks") and value is not None:
            if not isinstance(value, dict):
                problems.append(((key,), f"expected a mapping, got {show(value)}"))
                continue
            for name, options in value.items():
                if options is not None and not isinstance(options, dict):
                    problems.append(((key, name), f"expected a mapping, got {show(options)}"))
                    continue
                for option in options or {}:
                    problems.append(((key, name, option), unsupported(option)))
    return problems


def _interpolate(value: Any, path: Path, problems: list[Problem]) -> Any:
    """Compose's own ``$`` rules: ``$$`` is a literal ``$``; ``${VAR}`` would come from a shell."""
    if isinstance(value, dict):
        return {key: _interpolate(item, (*path, key), problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, (*path, index), problems) for index, item in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    pieces = value.split("$$")
    for piece in pieces:
        match = _VARIABLE.search(piece)
        if match:
            problems.append(
                (
                    path,
                    f"Compose variable {match.group(0)} would come from the shell running "
                    "Compose; write the value, or $${{ secrets.NAME }} for a Railyard secret",
                )
            )
            break
    return "$".join(pieces)
