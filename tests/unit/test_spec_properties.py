"""Property tests: whatever a user writes, the parser answers with a Manifest or a ManifestError.

Valid manifests are mutated at random (keys dropped, renamed or added, values
replaced by other YAML values); the result must parse, or fail with issues
that each carry a line number. Whatever parses must also satisfy the published
schema, and must render (or fail to render with a ManifestError).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import ManifestError
from controller.spec import RenderContext, load_compose, parse_manifest, render_environment
from controller.state import EnvironmentKey
from tests.support import SHARED_EXT
from tests.unit.test_spec_render import MANIFEST

SECRET_VALUE = "s3cr3t-v4lue"
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = jsonschema.Draft202012Validator(
    json.loads((ROOT / "schemas/paas.schema.json").read_text())
)
BASES = [
    yaml.safe_load(MANIFEST),
    yaml.safe_load((ROOT / "examples/fullstack/paas.yaml").read_text()),
    {"version": 1, "services": {"web": {"image": "nginx", "port": 80}}},
]
KEYS = [
    "image",
    "build",
    "context",
    "dockerfile",
    "args",
    "target",
    "command",
    "entrypoint",
    "env",
    "port",
    "replicas",
    "healthcheck",
    "path",
    "interval",
    "timeout",
    "retries",
    "start_period",
    "resources",
    "memory",
    "cpus",
    "pids",
    "routes",
    "host",
    "strip_prefix",
    "depends_on",
    "release",
    "volumes",
    "deploy",
    "strategy",
    "drain_seconds",
    "previews",
    "enabled",
    "ttl",
    "services",
    "secrets",
    "compose",
    "version",
    "web",
    "api",
    "db",
    "x-extra",
]
INTERESTING = [
    "10s",
    "500ms",
    "0",
    "256Mi",
    "512m",
    "/api",
    "/",
    "a.example.com",
    "A.Example.com",
    "web",
    "api",
    "db",
    "nginx:1.27",
    "..",
    "/etc",
    "../x",
    "data:/data",
    "./x:/y",
    "rolling",
    "${{ secrets.X }}",
    "${{ services.web.url }}",
    "${{ services.api.internal_url }}",
    "${{ railyard.pr }}",
    "${{ nope }}",
    "${{",
    "{service}-pr-{pr}.{base_domain}",
    "{nope}",
    "sh -c 'x",
    "",
    " ",
    "\n",
    "\x00",
    "é",
    "yes",
    "null",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(INTERESTING)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found.extend(paths_of(child, (*prefix, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.extend(paths_of(child, (*prefix, index)))
    return found


def mutate(document: Any, data: st.DataObject) -> Any:
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(paths_of(document)), label="path")
        if not path:
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        operation = data.draw(st.sampled_from(["replace", "delete", "rename", "insert"]))
        if operation == "replace":
            parent[last] = data.draw(values, label="value")
        elif operation == "delete":
            del parent[last]
        elif operation == "rename" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(KEYS) | st.text(max_size=8), label="key")] = (
                parent.pop(last)
            )
        elif operation == "insert" and isinstance(parent[last], dict):
            key = data.draw(st.sampled_from(KEYS) | st.text(max_size=8), label="key")
            parent[last][key] = data.draw(values, label="value")
    return document


def answer(text: str | bytes) -> None:
    """Parse and render; only ManifestError may escape, and its issues are located."""
    try:
        manifest = parse_manifest(text)
    except ManifestError as error:
        assert error.issues
        for issue in error.issues:
            assert issue.message and issue.filename == "paas.yaml"
            assert "Traceback" not in issue.message
        return
    if isinstance(text, str):
        assert list(SCHEMA.iter_errors(yaml.safe_load(text))) == []
    for env in ("production", "pr-1"):
        secrets = {"X": SECRET_VALUE, "API_TOKEN": SECRET_VALUE}
        context = RenderContext(EnvironmentKey("t", "shop", env), "abc", secrets=secrets)
        try:
            render_environment(manifest, context)
        except ManifestError as error:
            assert SECRET_VALUE not in str(error)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(base=st.sampled_from(BASES), data=st.data())
def test_mutated_manifests_parse_or_fail_with_located_issues(
    base: Any, data: st.DataObject
) -> None:
    document = mutate(base, data)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    try:
        parse_manifest(text)
    except ManifestError as error:
        assert all(issue.line is not None for issue in error.issues), [str(i) for i in error.issues]
    answer(text)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=":-[]{}&*!|>#'\"%@`,? \n\tab01.~<=$", max_size=80))
def test_yaml_punctuation_soup_never_crashes(text: str) -> None:
    answer("version: 1\n" + text)
    answer(text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    answer(raw)


COMPOSE_BASES = [
    yaml.safe_load(path.read_text())
    for path in sorted((SHARED_EXT / "compose").glob("*/compose.yaml"))
] or [{"services": {"web": {"image": "nginx", "ports": ["8080:80"]}}}]
COMPOSE_MANIFEST = parse_manifest(
    "version: 1\ncompose: compose.yaml\nroutes:\n  web: [{host: a.io}]\n"
)


@settings(max_examples=200, deadline=None, database=None)
@given(base=st.sampled_from(COMPOSE_BASES), data=st.data())
def test_mutated_compose_files_import_or_fail_with_located_issues(
    base: Any, data: st.DataObject
) -> None:
    raw = yaml.safe_dump(mutate(base, data), sort_keys=False, allow_unicode=True).encode()
    try:
        load_compose(COMPOSE_MANIFEST, lambda path: raw)
    except ManifestError as error:
        assert error.issues
        assert all(issue.line is not None for issue in error.issues), [str(i) for i in error.issues]
