"""``railyard validate``: a summary and exit 0, or every problem and exit 1, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.spec.cli import app

BAD = """\
version: 1
services:
  web:
    image: nginx
    port: 8080
    healthcheck:
      interval: ten
    replicas: 99
"""
GOOD = """\
version: 1
services:
  web:
    build: .
    port: 8080
    replicas: 2
    resources: {memory: 128Mi}
    routes: [{host: shop.example.com}, {host: shop.example.com, path: /static}]
    depends_on: [db]
  db:
    image: postgres:16
previews: {ttl: 2d}
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "paas.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_valid_manifest_prints_a_summary(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, [str(write(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("paas.yaml: valid, 2 service(s)")
    assert "  web: build ., port 8080, 2 replica(s), memory 128Mi" in lines
    assert "    route shop.example.com/static" in lines
    assert "    after db" in lines
    assert "  previews: {service}-pr-{pr}.{app}.{base_domain} (expire after 2d)" in lines


def test_a_folder_means_its_paas_yaml(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    result = runner.invoke(app, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{tmp_path / 'paas.yaml'}: valid, 2 service(s)"


def test_an_invalid_manifest_prints_each_problem_and_exits_1(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, [str(write(tmp_path, BAD))])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        'paas.yaml:7:17: services.web.healthcheck.interval: expected a duration like "10s", '
        'got "ten"',
        "paas.yaml:8:15: services.web.replicas: must be at most 20, got 99",
        f"2 problem(s) in {tmp_path / 'paas.yaml'}",
    ]
    assert isinstance(result.exception, SystemExit)


def test_json_errors_are_machine_readable(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, [str(write(tmp_path, BAD)), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["valid"] is False
    assert body["errors"][0] == {
        "file": "paas.yaml",
        "line": 7,
        "column": 17,
        "path": "services.web.healthcheck.interval",
        "message": 'expected a duration like "10s", got "ten"',
    }


def test_json_summary_of_a_valid_manifest(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, [str(write(tmp_path, GOOD)), "--json"])
    assert result.exit_code == 0
    body = json.loads(result.output)
    assert body["valid"] is True
    assert body["services"]["web"]["routes"] == ["shop.example.com/", "shop.example.com/static"]
    assert body["previews"] == {
        "enabled": True,
        "host": "{service}-pr-{pr}.{app}.{base_domain}",
        "services": ["web", "db"],
        "ttl": "2d",
    }


def test_a_missing_file_is_a_clean_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, [str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml: cannot read" in result.output
    assert "Traceback" not in result.output


def test_garbage_is_a_clean_error(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "paas.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage: [")
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_a_compose_manifest_reads_its_compose_file(runner: CliRunner, tmp_path: Path) -> None:
    write(
        tmp_path,
        "services:\n  site:\n    build: site\n    ports: ['8080:80']\n",
        "deploy/compose.yaml",
    )
    path = write(
        tmp_path, "version: 1\ncompose: deploy/compose.yaml\nroutes:\n  site: [{host: a.io}]\n"
    )
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 0, result.output
    assert "  site: build deploy/site, port 80, 1 replica(s)" in result.output


def test_a_compose_file_outside_the_repository_is_not_read(
    runner: CliRunner, tmp_path: Path
) -> None:
    outside = write(tmp_path, "services:\n  x:\n    image: nginx\n", "outside/compose.yaml")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "compose.yaml").symlink_to(outside)
    path = write(repo, "version: 1\ncompose: compose.yaml\n")
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 1
    assert "paas.yaml:2:10: compose: compose.yaml is not in the repository" in result.output
