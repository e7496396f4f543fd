"""``compose:`` manifests: each real Compose file imports, or names what Railyard cannot honour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.errors import ManifestError, ManifestIssue
from controller.spec import (
    Manifest,
    RenderContext,
    load_compose,
    parse_manifest,
    render_environment,
)
from controller.spec.capabilities import is_allowed
from controller.spec.compose import SUPPORTED_TOP_LEVEL_KEYS
from controller.spec.compose_service import IGNORED_SERVICE_KEYS, SUPPORTED_SERVICE_KEYS
from controller.state import EnvironmentKey, HealthCheck, Resources, Route
from tests.support import SHARED_EXT, shared_ext

CORPUS = (
    sorted(p.name for p in (SHARED_EXT / "compose").iterdir() if p.is_dir())
    if (SHARED_EXT / "compose").is_dir()
    else ["(missing)"]
)


def compose_manifest(extra: str = "") -> Manifest:
    return parse_manifest("version: 1\ncompose: compose.yaml\n" + extra)


def load(text: str | bytes, extra: str = "") -> Manifest:
    raw = text.encode() if isinstance(text, str) else text
    return load_compose(
        compose_manifest(extra), lambda path: raw if path == "compose.yaml" else None
    )


def issues_of(text: str, extra: str = "") -> list[ManifestIssue]:
    with pytest.raises(ManifestError) as caught:
        load(text, extra)
    return caught.value.issues


def is_named_volume(entry: Any) -> bool:
    if isinstance(entry, dict):
        return (
            entry.get("type", "volume") == "volume"
            and bool(entry.get("source"))
            and not entry.get("read_only")
        )
    parts = str(entry).split(":")
    return (
        len(parts) >= 2 and not parts[0].startswith((".", "/", "~")) and parts[2:] in ([], ["rw"])
    )


def container_ports(entries: list[Any]) -> set[str]:
    return {
        str(e.get("target") if isinstance(e, dict) else e).split("/")[0].rsplit(":", 1)[-1]
        for e in entries
    }


def refusals(document: dict[str, Any]) -> set[str]:
    """Where Railyard must refuse this Compose file, read from the file itself."""
    found = {
        key for key in document if key not in SUPPORTED_TOP_LEVEL_KEYS and not key.startswith("x-")
    }
    for section in ("volumes", "networks"):
        for name, options in (document.get(section) or {}).items():
            found |= {f"{section}.{name}.{option}" for option in options or {}}
    for name, body in document["services"].items():
        for key in body:
            if key not in SUPPORTED_SERVICE_KEYS and key not in IGNORED_SERVICE_KEYS:
                found.add(f"services.{name}.{key}")
        for index, entry in enumerate(body.get("volumes", [])):
            if not is_named_volume(entry):
                found.add(f"services.{name}.volumes[{index}]")
        if len(container_ports(body.get("ports", []))) > 1:
            found.add(f"services.{name}.ports")
        for index, capability in enumerate(body.get("cap_add", [])):
            if not is_allowed(capability):
                found.add(f"services.{name}.cap_add[{index}]")
    return found


@pytest.mark.parametrize("name", CORPUS)
def test_each_real_compose_file_imports_or_names_what_is_unsupported(name: str) -> None:
    path = shared_ext("compose", name, "compose.yaml")
    text = path.read_bytes()
    document = yaml.safe_load(text)
    expected = refusals(document)
    if expected:
        with pytest.raises(ManifestError) as caught:
            load(text)
        issues = caught.value.issues
        assert {issue.path for issue in issues} == expected
        lines = text.decode().splitlines()
        for issue in issues:
            assert issue.filename == "compose.yaml" and issue.line is not None
            written = lines[issue.line - 1]
            last = issue.path.rsplit(".", 1)[-1].split("[")[0]
            assert last in written or written.strip().startswith("-"), (str(issue), written)
        return
    manifest = load(text)
    services = manifest.service_specs()
    assert list(services) == list(document["services"])
    for service_name, body in document["services"].items():
        spec = services[service_name]
        if "build" in body:
            context = (
                body["build"]
                if isinstance(body["build"], str)
                else body["build"].get("context", ".")
            )
            assert spec.build is not None and spec.build.context == str(Path(context))
            assert spec.image is None
        else:
            assert spec.image == body["image"] and spec.build is None
        ports = container_ports(body.get("ports", [])) or {str(p) for p in body.get("expose", [])}
        assert spec.port == (int(ports.pop()) if len(ports) == 1 else None)
        environment = body.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(entry.split("=", 1) for entry in environment)
        assert dict(spec.env) == {key: str(value) for key, value in environment.items()}
        depends = body.get("depends_on") or []
        assert list(spec.depends_on) == list(depends)
        assert spec.replicas == (body.get("deploy") or {}).get("replicas", 1)
        assert [f"{v.name}:{v.path}" for v in spec.volumes] == [
            str(v) for v in body.get("volumes", [])
        ]


def test_the_corpus_has_both_outcomes() -> None:
    outcomes = set()
    for name in CORPUS:
        document = yaml.safe_load(shared_ext("compose", name, "compose.yaml").read_bytes())
        outcomes.add(bool(refusals(document)))
    assert outcomes == {True, False}


def test_routes_and_previews_come_from_paas_yaml() -> None:
    compose = (
        "services:\n"
        "  web:\n"
        "    image: nginx:1.27\n"
        "    ports: ['8080:80']\n"
        "  db:\n"
        "    image: postgres\n"
    )
    extra = "routes:\n  web:\n    - host: shop.example.com\npreviews:\n  services: [web, db]\n"
    manifest = load(compose, extra)
    production = render_environment(
        manifest, RenderContext(EnvironmentKey("t", "shop", "production"), "abc")
    )
    web = production.service("web")
    assert web is not None and web.routes == (Route("shop.example.com"),) and web.port == 80
    preview = render_environment(
        manifest, RenderContext(EnvironmentKey("t", "shop", "pr-3"), "abc", base_domain="x.io")
    )
    web = preview.service("web")
    assert web is not None and web.routes == (Route("web-pr-3.shop.x.io"),)


def test_everything_compose_can_say_is_translated() -> None:
    compose = """\
x-common: &common
  restart: always
services:
  api:
    <<: *common
    build:
      context: ./api
      dockerfile: Dockerfile.prod
      target: runtime
      args: [VERSION=1.2, "FLAG=$$HOME"]
    command: ["serve", "--port", 9000]
    entrypoint: /bin/entry --verbose
    environment:
      PORT: 9000
      DEBUG: "false"
      PRICE: "$$5"
      TOKEN: $${{ secrets.API_TOKEN }}
    ports:
      - target: 9000
        published: 19000
        protocol: tcp
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:9000/healthz"]
      interval: 1m30s
      timeout: 5s
      retries: 4
      start_period: 20s
    depends_on:
      db:
        condition: service_healthy
    deploy:
      replicas: 3
      resources:
        limits: {memory: 512m, cpus: "1.5", pids: 200}
      update_config: {order: stop-first}
    volumes:
      - type: volume
        source: uploads
        target: /srv/uploads
  db:
    image: postgres:16
    mem_limit: 1g
    cpus: 2
    pids_limit: 300
    expose: ["5432"]
    healthcheck:
      test: pg_isready
    volumes: ["pgdata:/var/lib/postgresql/data:rw"]
volumes:
  uploads:
  pgdata: {}
networks:
  default:
"""
    manifest = load(compose)
    desired = render_environment(
        manifest,
        RenderContext(
            EnvironmentKey("t", "shop", "production"), "abc", secrets={"API_TOKEN": "tok"}
        ),
    )
    api = desired.service("api")
    db = desired.service("db")
    assert api is not None and db is not None
    assert api.build is not None
    assert (api.build.context, api.build.dockerfile, api.build.target) == (
        "api",
        "Dockerfile.prod",
        "runtime",
    )
    assert api.build.args == (("FLAG", "$HOME"), ("VERSION", "1.2"))
    assert api.command == ("serve", "--port", "9000")
    assert api.entrypoint == ("/bin/entry", "--verbose")
    assert dict(api.env) == {"PORT": "9000", "DEBUG": "false", "PRICE": "$5", "TOKEN": "tok"}
    assert api.port == 9000
    assert api.healthcheck == HealthCheck("/healthz", 9000, 90.0, 5.0, 4, 20.0)
    assert api.depends_on == ("db",)
    assert (api.replicas, api.strategy) == (3, "recreate")
    assert api.resources == Resources(512 * 2**20, 1.5, 200)
    assert api.volumes == (("uploads", "/srv/uploads"),)
    assert db.port == 5432
    assert db.healthcheck == HealthCheck(port=5432)
    assert db.resources == Resources(2**30, 2.0, 300)
    assert db.volumes == (("pgdata", "/var/lib/postgresql/data"),)


@pytest.mark.parametrize(
    ("ports", "port"),
    [
        ("[22:22]", 22),
        ("['8080:80']", 80),
        ("[80]", 80),
        ("['127.0.0.1:8000:8000/tcp']", 8000),
        ("[59:59]", 59),
    ],
)
def test_ports_are_read_the_way_compose_reads_them(ports: str, port: int) -> None:
    manifest = load(f"services:\n  a:\n    image: x\n    ports: {ports}\n")
    assert manifest.service_specs()["a"].port == port


def test_a_build_context_is_relative_to_the_compose_file() -> None:
    raw = b"services:\n  web:\n    build: ../web\n"
    manifest = load_compose(
        parse_manifest("version: 1\ncompose: deploy/compose.yaml\n"),
        lambda path: raw if path == "deploy/compose.yaml" else None,
    )
    build = manifest.service_specs()["web"].build
    assert build is not None and build.context == "web"


REFUSED: list[tuple[str, str, str, str]] = [
    (
        "secrets",
        "services:\n  a:\n    image: x\n    secrets: [s]\n",
        "services.a.secrets",
        "${{ secrets.NAME }}",
    ),
    (
        "env_file",
        "services:\n  a:\n    image: x\n    env_file: .env\n",
        "services.a.env_file",
        "environment",
    ),
    (
        "privileged",
        "services:\n  a:\n    image: x\n    privileged: true\n",
        "services.a.privileged",
        "never run privileged",
    ),
    (
        "cap_add beyond the allow-list",
        "services:\n  a:\n    image: x\n    cap_add: [CHOWN, SYS_ADMIN]\n",
        "services.a.cap_add[1]",
        'Compose key "cap_add" is not supported for "SYS_ADMIN": containers run with '
        "capabilities dropped, except CHOWN, DAC_OVERRIDE,",
    ),
    (
        "cap_add ALL",
        "services:\n  a:\n    image: x\n    cap_add: [ALL]\n",
        "services.a.cap_add[0]",
        'not supported for "ALL"',
    ),
    (
        "cap_add typo",
        "services:\n  a:\n    image: x\n    cap_add: [CAP_CHWON]\n",
        "services.a.cap_add[0]",
        'not supported for "CAP_CHWON"',
    ),
    (
        "cap_add not a list",
        "services:\n  a:\n    image: x\n    cap_add: CHOWN\n",
        "services.a.cap_add",
        "expected a list",
    ),
    (
        "unknown service key",
        "services:\n  a:\n    image: x\n    shm_size: 1g\n",
        "services.a.shm_size",
        'Compose key "shm_size"',
    ),
    ("configs", "services:\n  a: {image: x}\nconfigs: {}\n", "configs", "not supported"),
    ("include", "include: [other.yaml]\nservices:\n  a: {image: x}\n", "include", "not supported"),
    (
        "volume driver",
        "services:\n  a: {image: x}\nvolumes:\n  v: {driver: nfs}\n",
        "volumes.v.driver",
        "not supported",
    ),
    (
        "network options",
        "services:\n  a: {image: x}\nnetworks:\n  n: {external: true}\n",
        "networks.n.external",
        "not supported",
    ),
    (
        "bind mount",
        "services:\n  a:\n    image: x\n    volumes: ['./src:/src']\n",
        "services.a.volumes[0]",
        "host folder",
    ),
    (
        "anonymous volume",
        "services:\n  a:\n    image: x\n    volumes: ['/cache']\n",
        "services.a.volumes[0]",
        "anonymous",
    ),
    (
        "read-only volume",
        "services:\n  a:\n    image: x\n    volumes: ['v:/d:ro']\n",
        "services.a.volumes[0]",
        "options (ro)",
    ),
    (
        "long bind",
        "services:\n  a:\n    image: x\n    volumes: [{type: bind, source: ., target: /s}]\n",
        "services.a.volumes[0]",
        "bind mount",
    ),
    (
        "two ports",
        "services:\n  a:\n    image: x\n    ports: ['80:80', '443:443']\n",
        "services.a.ports",
        "one port per service",
    ),
    (
        "udp port",
        "services:\n  a:\n    image: x\n    ports: ['53:53/udp']\n",
        "services.a.ports[0]",
        "only TCP",
    ),
    (
        "port range",
        "services:\n  a:\n    image: x\n    ports: ['3000-3005:3000-3005']\n",
        "services.a.ports[0]",
        "port number",
    ),
    (
        "shell variable",
        "services:\n  a:\n    image: x\n    environment: {A: '${HOME}'}\n",
        "services.a.environment.A",
        "${HOME} would come from the shell",
    ),
    ("bare variable", "services:\n  a:\n    image: 'x:$TAG'\n", "services.a.image", "$TAG"),
    (
        "value from shell",
        "services:\n  a:\n    image: x\n    environment: [TOKEN]\n",
        "services.a.environment[0]",
        '"TOKEN" takes its value from the shell',
    ),
    (
        "null env",
        "services:\n  a:\n    image: x\n    environment: {TOKEN: null}\n",
        "services.a.environment.TOKEN",
        "from the shell",
    ),
    (
        "completed condition",
        "services:\n"
        "  a:\n"
        "    image: x\n"
        "    depends_on: {b: {condition: service_completed_successfully}}\n"
        "  b: {image: y}\n",
        "services.a.depends_on.b.condition",
        "use release",
    ),
    (
        "deploy placement",
        "services:\n  a:\n    image: x\n    deploy: {placement: {}}\n",
        "services.a.deploy.placement",
        "not supported",
    ),
    (
        "reservations",
        "services:\n  a:\n    image: x\n    deploy: {resources: {reservations: {}}}\n",
        "services.a.deploy.resources.reservations",
        "not supported",
    ),
    (
        "update parallelism",
        "services:\n  a:\n    image: x\n    deploy: {update_config: {parallelism: 2}}\n",
        "services.a.deploy.update_config.parallelism",
        "not supported",
    ),
    (
        "healthcheck start_interval",
        "services:\n  a:\n    image: x\n    healthcheck: {test: x, start_interval: 1s}\n",
        "services.a.healthcheck.start_interval",
        "not supported",
    ),
    (
        "build ssh",
        "services:\n  a:\n    build: {context: ., ssh: [default]}\n",
        "services.a.build.ssh",
        "not supported",
    ),
    (
        "remote context",
        "services:\n  a:\n    build: https://github.com/a/b.git\n",
        "services.a.build.context",
        "remote build contexts",
    ),
    ("no services", "name: x\n", "", 'needs "services"'),
    ("services list", "services: [a]\n", "services", "mapping of services"),
]


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [(t, p, f) for _, t, p, f in REFUSED],
    ids=[n for n, *_ in REFUSED],
)
def test_what_compose_says_that_railyard_cannot_honour_is_named(
    text: str, path: str, fragment: str
) -> None:
    issues = issues_of(text)
    assert any(issue.path == path and fragment in issue.message for issue in issues), [
        str(i) for i in issues
    ]
    assert all(issue.filename == "compose.yaml" for issue in issues)


INVALID_AFTER_TRANSLATION: list[tuple[str, str, str, str, int, int]] = [
    # (name, compose text, path, fragment, line, column): located in compose.yaml
    (
        "service name",
        "services:\n  web_1:\n    image: x\n",
        "services.web_1",
        "not a valid service name",
        2,
        3,
    ),
    (
        "too many replicas",
        "services:\n  a:\n    image: x\n    deploy:\n      replicas: 50\n",
        "services.a.deploy.replicas",
        "at most 20",
        5,
        17,
    ),
    (
        "bad memory",
        "services:\n  a:\n    image: x\n    mem_limit: lots\n",
        "services.a.mem_limit",
        'size like "256Mi"',
        4,
        16,
    ),
    (
        "unknown dependency",
        "services:\n  a:\n    image: x\n    depends_on: [b]\n",
        "services.a.depends_on[0]",
        'unknown service "b"',
        4,
        18,
    ),
    (
        "cycle",
        "services:\n"
        "  a:\n"
        "    image: x\n"
        "    depends_on: [b]\n"
        "  b:\n"
        "    image: y\n"
        "    depends_on: [a]\n",
        "services.a.depends_on",
        "a -> b -> a",
        4,
        17,
    ),
    (
        "bad interval",
        "services:\n  a:\n    image: x\n    healthcheck:\n      test: x\n      interval: often\n",
        "services.a.healthcheck.interval",
        "duration",
        6,
        17,
    ),
    (
        "bad image",
        "services:\n  a:\n    image: 'Bad Image'\n",
        "services.a.image",
        "image reference",
        3,
        12,
    ),
    (
        "context escape",
        "services:\n  a:\n    build: ../../elsewhere\n",
        "services.a.build.context",
        '".."',
        3,
        12,
    ),
    (
        "env name",
        "services:\n  a:\n    image: x\n    environment: {'A-B': c}\n",
        "services.a.environment.A-B",
        "variable name",
        4,
        19,
    ),
    (
        "update order",
        "services:\n  a:\n    image: x\n    deploy: {update_config: {order: sideways}}\n",
        "services.a.deploy.update_config.order",
        "'rolling' or 'recreate'",
        4,
        37,
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "fragment", "line", "column"),
    [case[1:] for case in INVALID_AFTER_TRANSLATION],
    ids=[case[0] for case in INVALID_AFTER_TRANSLATION],
)
def test_problems_found_after_translation_point_into_the_compose_file(
    text: str, path: str, fragment: str, line: int, column: int
) -> None:
    issues = issues_of(text)
    matching = [i for i in issues if i.path == path and fragment in i.message]
    assert matching, [str(i) for i in issues]
    assert (matching[0].filename, matching[0].line, matching[0].column) == (
        "compose.yaml",
        line,
        column,
    )


def test_route_problems_point_into_paas_yaml() -> None:
    extra = "routes:\n  web:\n    - host: a.example.com\n  nope:\n    - host: b.example.com\n"
    issues = issues_of("services:\n  web:\n    image: x\n", extra)
    (issue,) = issues
    assert (issue.filename, issue.path, issue.line, issue.column) == (
        "paas.yaml",
        "routes.nope",
        6,
        3,
    )
    issues = issues_of(
        "services:\n  web:\n    image: x\n", "routes:\n  web:\n    - host: a.example.com\n"
    )
    (issue,) = issues
    assert (issue.filename, issue.path, issue.line) == ("paas.yaml", "routes.web", 5)
    assert 'needs a "port"' in issue.message


def test_preview_problems_point_into_paas_yaml() -> None:
    issues = issues_of("services:\n  web:\n    image: x\n", "previews:\n  services: [wbe]\n")
    (issue,) = issues
    assert (issue.filename, issue.path, issue.line) == ("paas.yaml", "previews.services[0]", 4)


def test_a_missing_compose_file_is_named_in_paas_yaml() -> None:
    with pytest.raises(ManifestError) as caught:
        load_compose(compose_manifest(), lambda path: None)
    (issue,) = caught.value.issues
    assert str(issue) == "paas.yaml:2:10: compose: compose.yaml is not in the repository"


def test_a_broken_compose_file_names_its_line() -> None:
    (issue,) = issues_of("services:\n  a:\n    image: [x\n")
    assert issue.filename == "compose.yaml" and issue.line is not None and issue.line >= 3


def test_a_compose_alias_bomb_is_refused() -> None:
    bomb = (
        "x-a: &a ["
        + ",".join(["1"] * 400)
        + "]\nx-b: ["
        + ",".join(["*a"] * 400)
        + "]\nservices: {}\n"
    )
    (issue,) = issues_of(bomb)
    assert "expands to more than" in issue.message


def test_a_manifest_without_compose_is_returned_unchanged() -> None:
    manifest = parse_manifest("version: 1\nservices:\n  web: {image: nginx}\n")
    assert load_compose(manifest, lambda path: None) is manifest


def test_a_missing_secret_of_a_compose_service_points_into_the_compose_file() -> None:
    manifest = load(
        "services:\n  api:\n    image: x\n    environment:\n      TOKEN: $${{ secrets.TOKEN }}\n"
    )
    context = RenderContext(EnvironmentKey("t", "shop", "production"), "abc")
    with pytest.raises(ManifestError) as caught:
        render_environment(manifest, context)
    (issue,) = caught.value.issues
    assert (issue.filename, issue.line, issue.column, issue.path) == (
        "compose.yaml",
        5,
        14,
        "services.api.environment.TOKEN",
    )


def test_allowed_cap_add_becomes_capabilities_and_cap_drop_is_ignored() -> None:
    compose = (
        "services:\n"
        "  web:\n"
        "    image: nginx:1.27\n"
        "    cap_drop: [ALL]\n"
        "    cap_add: [net_bind_service, CAP_CHOWN, SETUID, SETGID]\n"
        "  db:\n"
        "    image: postgres:16\n"
        "    cap_drop: [NET_RAW]\n"
    )
    desired = render_environment(
        load(compose), RenderContext(EnvironmentKey("t", "shop", "production"), "abc")
    )
    web, db = desired.service("web"), desired.service("db")
    assert web is not None and db is not None
    assert web.capabilities == ("CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID")
    assert db.capabilities == ()


def test_a_refused_capability_is_named_and_located_in_the_compose_file() -> None:
    (issue,) = issues_of(
        "services:\n  a:\n    image: x\n    cap_add:\n      - CHOWN\n      - CHWON\n"
    )
    assert str(issue) == (
        'compose.yaml:6:9: services.a.cap_add[1]: Compose key "cap_add" is not supported for '
        '"CHWON": containers run with capabilities dropped, except CHOWN, DAC_OVERRIDE, FOWNER, '
        'FSETID, KILL, NET_BIND_SERVICE, SETGID, SETUID; did you mean "CHOWN"?'
    )
