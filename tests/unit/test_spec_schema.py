"""The published JSON Schema: in sync with the models, and in agreement with the parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controller.spec import load_compose, parse_manifest
from controller.spec.schema import render_schema
from tests.unit.test_spec_parse import VALID, with_service

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "paas.schema.json"
EXAMPLES = sorted(ROOT.glob("examples/*/paas.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_checked_in_schema_matches_the_models() -> None:
    assert SCHEMA_FILE.read_text() == render_schema(), (
        "schemas/paas.schema.json is stale: run "
        "`python -m controller.spec.schema > schemas/paas.schema.json`"
    )


def test_the_schema_declares_draft_2020_12() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_every_example_validates_against_schema_and_parser(
    path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    document = yaml.safe_load(path.read_text())
    errors = [error.message for error in validator.iter_errors(document)]
    assert errors == []
    manifest = parse_manifest(path.read_bytes(), filename=str(path.relative_to(ROOT)))

    def read(relative: str) -> bytes | None:
        target = path.parent / relative
        return target.read_bytes() if target.is_file() else None

    resolved = load_compose(manifest, read)
    assert resolved.service_specs()


@pytest.mark.parametrize(
    "fields", [fields for _, fields, _ in VALID], ids=[name for name, _, _ in VALID]
)
def test_the_schema_accepts_what_the_parser_accepts(
    fields: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    document = yaml.safe_load(with_service(**fields))
    assert [error.message for error in validator.iter_errors(document)] == []


REJECTED_BY_BOTH = [
    {"port": 0},
    {"port": "80"},
    {"replicas": 21},
    {"image": "Nginx"},
    {"healthcheck": {"interval": "ten"}},
    {"healthcheck": {"interval": 10}},
    {"resources": {"memory": "512m"}},
    {"resources": {"cpus": 0}},
    {"routes": [{"host": "App.example.com"}]},
    {"routes": [{"host": "a.io", "path": "api"}]},
    {"volumes": ["./data:/data"]},
    {"deploy": {"strategy": "blue-green"}},
    {"build": "."},
    {"image": None},
    {"helthcheck": {}},
    {"env": {"BAD-NAME": "x"}},
    {"command": []},
    {"capabilities": ["SYS_ADMIN"]},
    {"capabilities": ["CAP_CHWON"]},
    {"capabilities": "CHOWN"},
]


@pytest.mark.parametrize("fields", REJECTED_BY_BOTH)
def test_the_schema_rejects_common_mistakes_too(
    fields: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    document = yaml.safe_load(with_service(**fields))
    assert list(validator.iter_errors(document))


def documented_paths() -> list[str]:
    """Every field a user can write, as the README's headings spell it."""
    from controller.spec import models

    def walk(model: type[Any], prefix: str) -> list[str]:
        found = []
        for name in model.model_fields:
            path = f"{prefix}{name}"
            found.append(path)
            nested = {
                "build": models.BuildSpec,
                "healthcheck": models.HealthCheckSpec,
                "resources": models.ResourcesSpec,
                "deploy": models.DeploySpec,
            }.get(name)
            if model is models.ServiceSpec and nested is not None:
                found.extend(walk(nested, f"{path}."))
            if model is models.ServiceSpec and name == "routes":
                found.extend(walk(models.RouteSpec, f"{path}[]."))
        return found

    return [
        *walk(models.Manifest, ""),
        *walk(models.ServiceSpec, "services.<name>."),
        *walk(models.PreviewsSpec, "previews."),
    ]


def test_the_readme_documents_every_field_with_an_example() -> None:
    readme = (ROOT / "schemas" / "README.md").read_text()
    sections = readme.split("\n### ")
    for path in documented_paths():
        matching = [s for s in sections if s.startswith(f"`{path}`\n")]
        assert matching, f"schemas/README.md has no section for {path}"
        assert "```yaml" in matching[0], f"the section for {path} has no example"


def test_the_readme_opening_example_is_a_valid_manifest(
    validator: jsonschema.Draft202012Validator,
) -> None:
    readme = (ROOT / "schemas" / "README.md").read_text()
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert list(validator.iter_errors(yaml.safe_load(example))) == []
    assert set(parse_manifest(example).service_specs()) == {"web"}
