"""paas.yaml parsing: what a valid manifest becomes, and what each mistake is called."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from controller.errors import ManifestError
from controller.spec import Manifest, parse_manifest


def dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def with_service(**fields: Any) -> str:
    """A manifest whose one service, web, is nginx on port 8080 plus ``fields``."""
    service: dict[str, Any] = {"image": "nginx:1.27", "port": 8080}
    for key, value in fields.items():
        if value is None:
            service.pop(key, None)
        else:
            service[key] = value
    return dump({"version": 1, "services": {"web": service}})


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def web(manifest: Manifest) -> Any:
    return manifest.service_specs()["web"]


VALID: list[tuple[str, dict[str, Any], Any]] = [
    ("image only", {}, lambda s: s.image == "nginx:1.27" and s.replicas == 1),
    ("registry image", {"image": "ghcr.io/acme/web:1.0"}, lambda s: s.image.startswith("ghcr")),
    ("image with port registry", {"image": "registry.local:5000/a/b"}, lambda s: s.build is None),
    ("image digest", {"image": "nginx@sha256:" + "a" * 64}, lambda s: "@sha256" in s.image),
    ("build string", {"image": None, "build": "web"}, lambda s: s.build.context == "web"),
    ("build dot", {"image": None, "build": "."}, lambda s: s.build.dockerfile == "Dockerfile"),
    (
        "build mapping",
        {"image": None, "build": {"context": "svc/api", "dockerfile": "Dockerfile.prod"}},
        lambda s: (s.build.context, s.build.dockerfile) == ("svc/api", "Dockerfile.prod"),
    ),
    (
        "build args as text",
        {"image": None, "build": {"args": {"N": 3, "ON": True, "S": "x"}}},
        lambda s: dict(s.build.args) == {"N": "3", "ON": "true", "S": "x"},
    ),
    ("build target", {"image": None, "build": {"target": "prod"}}, lambda s: s.build.target),
    ("command list", {"command": ["sleep", "10"]}, lambda s: s.command == ("sleep", "10")),
    ("command number word", {"command": ["sleep", 10]}, lambda s: s.command == ("sleep", "10")),
    (
        "command string split",
        {"command": "sh -c 'echo hi there'"},
        lambda s: s.command == ("sh", "-c", "echo hi there"),
    ),
    ("entrypoint", {"entrypoint": "/bin/app --x"}, lambda s: s.entrypoint == ("/bin/app", "--x")),
    ("env strings", {"env": {"A": "b"}}, lambda s: dict(s.env) == {"A": "b"}),
    ("env empty string", {"env": {"A": ""}}, lambda s: s.env["A"] == ""),
    ("env int", {"env": {"PORT": 8080}}, lambda s: s.env["PORT"] == "8080"),
    ("env bool", {"env": {"DEBUG": False}}, lambda s: s.env["DEBUG"] == "false"),
    ("env secret ref", {"env": {"K": "${{ secrets.K }}"}}, lambda s: "secrets.K" in s.env["K"]),
    ("env railyard ref", {"env": {"P": "pr-${{railyard.pr}}"}}, lambda s: s.env["P"]),
    ("env lower name", {"env": {"lower_case": "x"}}, lambda s: "lower_case" in s.env),
    ("no port", {"port": None}, lambda s: s.port is None),
    ("port min", {"port": 1}, lambda s: s.port == 1),
    ("port max", {"port": 65535}, lambda s: s.port == 65535),
    ("replicas zero", {"replicas": 0}, lambda s: s.replicas == 0),
    ("replicas max", {"replicas": 20}, lambda s: s.replicas == 20),
    ("healthcheck path", {"healthcheck": {"path": "/healthz"}}, lambda s: s.healthcheck.path),
    (
        "healthcheck durations",
        {"healthcheck": {"interval": "500ms", "timeout": "2s", "start_period": "1m"}},
        lambda s: (
            (s.healthcheck.interval, s.healthcheck.timeout, s.healthcheck.start_period)
            == (0.5, 2.0, 60.0)
        ),
    ),
    (
        "healthcheck compound",
        {"healthcheck": {"interval": "1m30s"}},
        lambda s: s.healthcheck.interval == 90,
    ),
    ("healthcheck zero start", {"healthcheck": {"start_period": 0}}, lambda s: True),
    (
        "healthcheck retries",
        {"healthcheck": {"retries": 10}},
        lambda s: s.healthcheck.retries == 10,
    ),
    ("healthcheck port", {"healthcheck": {"port": 9000}}, lambda s: s.healthcheck.port == 9000),
    ("empty healthcheck", {"healthcheck": {}}, lambda s: s.healthcheck.interval == 0.5),
    ("memory Mi", {"resources": {"memory": "256Mi"}}, lambda s: s.resources.memory == 256 * 2**20),
    ("memory Gi", {"resources": {"memory": "1Gi"}}, lambda s: s.resources.memory == 2**30),
    ("memory M", {"resources": {"memory": "512M"}}, lambda s: s.resources.memory == 512 * 10**6),
    (
        "memory bytes",
        {"resources": {"memory": 8 * 2**20}},
        lambda s: s.resources.memory == 8 * 2**20,
    ),
    ("memory min", {"resources": {"memory": "4Mi"}}, lambda s: True),
    ("memory max", {"resources": {"memory": "64Gi"}}, lambda s: True),
    ("cpus fraction", {"resources": {"cpus": 0.5}}, lambda s: s.resources.cpus == 0.5),
    ("cpus int", {"resources": {"cpus": 2}}, lambda s: s.resources.cpus == 2.0),
    ("cpus min", {"resources": {"cpus": 0.01}}, lambda s: True),
    ("pids", {"resources": {"pids": 100}}, lambda s: s.resources.pids == 100),
    ("route", {"routes": [{"host": "a.example.com"}]}, lambda s: s.routes[0].path == "/"),
    (
        "route path strip",
        {"routes": [{"host": "a.example.com", "path": "/api", "strip_prefix": True}]},
        lambda s: s.routes[0].strip_prefix,
    ),
    ("route single label", {"routes": [{"host": "localhost"}]}, lambda s: True),
    ("route deep host", {"routes": [{"host": "a.b.c.d.example.com"}]}, lambda s: True),
    (
        "two routes",
        {"routes": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
        lambda s: len(s.routes) == 2,
    ),
    ("release list", {"release": ["./migrate", "up"]}, lambda s: s.release == ("./migrate", "up")),
    ("release string", {"release": "./migrate up"}, lambda s: s.release == ("./migrate", "up")),
    ("volume", {"volumes": ["data:/var/lib/data"]}, lambda s: s.volumes[0].name == "data"),
    ("volume dotted name", {"volumes": ["my.data-1:/d"]}, lambda s: s.volumes[0].path == "/d"),
    (
        "deploy recreate",
        {"deploy": {"strategy": "recreate"}},
        lambda s: s.deploy.strategy == "recreate",
    ),
    ("deploy drain", {"deploy": {"drain_seconds": 0}}, lambda s: s.deploy.drain_seconds == 0),
    ("deploy drain float", {"deploy": {"drain_seconds": 2.5}}, lambda s: True),
    ("null healthcheck", {"healthcheck": None}, lambda s: s.healthcheck is None),
    (
        "capabilities",
        {"capabilities": ["NET_BIND_SERVICE", "CHOWN"]},
        lambda s: s.capabilities == ("CHOWN", "NET_BIND_SERVICE"),
    ),
    (
        "capabilities any case, CAP_ prefix, repeated",
        {"capabilities": ["cap_setuid", "CAP_SETGID", "SetUid", "kill", "KILL"]},
        lambda s: s.capabilities == ("KILL", "SETGID", "SETUID"),
    ),
    ("capabilities empty", {"capabilities": []}, lambda s: s.capabilities == ()),
]


@pytest.mark.parametrize(
    ("fields", "check"), [(f, c) for _, f, c in VALID], ids=[name for name, _, _ in VALID]
)
def test_valid_service_fields(fields: dict[str, Any], check: Any) -> None:
    assert check(web(parse_manifest(with_service(**fields))))


INVALID_SERVICE: list[tuple[str, dict[str, Any], str, str]] = [
    ("neither image nor build", {"image": None}, "services.web", 'set "image"'),
    ("image and build", {"build": "."}, "services.web", "only one of"),
    ("image uppercase", {"image": "Nginx"}, "services.web.image", "lowercase"),
    ("image spaces", {"image": "nginx latest"}, "services.web.image", "image reference"),
    ("image number", {"image": 5}, "services.web.image", "expected a string"),
    (
        "build absolute",
        {"image": None, "build": "/etc"},
        "services.web.build.context",
        "inside the repository",
    ),
    ("build escape", {"image": None, "build": "../other"}, "services.web.build.context", '".."'),
    (
        "build nested escape",
        {"image": None, "build": "a/../../b"},
        "services.web.build.context",
        '".."',
    ),
    (
        "build home",
        {"image": None, "build": "~/x"},
        "services.web.build.context",
        "inside the repository",
    ),
    (
        "build empty",
        {"image": None, "build": ""},
        "services.web.build.context",
        "must not be empty",
    ),
    ("build backslash", {"image": None, "build": "a\\b"}, "services.web.build.context", "'/'"),
    (
        "dockerfile escape",
        {"image": None, "build": {"dockerfile": "../Dockerfile"}},
        "services.web.build.dockerfile",
        '".."',
    ),
    (
        "dockerfile absolute",
        {"image": None, "build": {"dockerfile": "/Dockerfile"}},
        "services.web.build.dockerfile",
        "inside the repository",
    ),
    (
        "build unknown key",
        {"image": None, "build": {"contxt": "."}},
        "services.web.build.contxt",
        'did you mean "context"',
    ),
    ("build list", {"image": None, "build": ["."]}, "services.web.build", "expected a mapping"),
    (
        "build arg name",
        {"image": None, "build": {"args": {"1X": "a"}}},
        "services.web.build.args.1X",
        "variable name",
    ),
    ("command empty list", {"command": []}, "services.web.command", "must not be empty"),
    ("command empty string", {"command": ""}, "services.web.command", "must not be empty"),
    ("command unclosed quote", {"command": "sh -c 'oops"}, "services.web.command", "cannot split"),
    ("command mapping", {"command": {"a": 1}}, "services.web.command", "list of words"),
    ("command nested list", {"command": [["a"]]}, "services.web.command", "word 0"),
    ("command null word", {"command": ["a", None]}, "services.web.command", "word 1"),
    (
        "command reference",
        {"command": ["echo", "${{ secrets.X }}"]},
        "services.web.command",
        "only filled in inside env",
    ),
    ("entrypoint number", {"entrypoint": 5}, "services.web.entrypoint", "list of words"),
    ("env list", {"env": ["A=b"]}, "services.web.env", "expected a mapping"),
    ("env null value", {"env": {"A": None}}, "services.web.env.A", 'write ""'),
    ("env nested", {"env": {"A": {"b": 1}}}, "services.web.env.A", "expected a string"),
    ("env bad name", {"env": {"BAD-NAME": "x"}}, "services.web.env.BAD-NAME", "variable name"),
    ("env digit name", {"env": {"1A": "x"}}, "services.web.env.1A", "variable name"),
    (
        "env unknown namespace",
        {"env": {"A": "${{ vars.X }}"}},
        "services.web.env.A",
        "unknown reference",
    ),
    ("env unclosed ref", {"env": {"A": "${{ secrets.X"}}, "services.web.env.A", "not closed"),
    (
        "env bad secret name",
        {"env": {"A": "${{ secrets.a-b }}"}},
        "services.web.env.A",
        "secret is named",
    ),
    (
        "env secret no name",
        {"env": {"A": "${{ secrets }}"}},
        "services.web.env.A",
        "secret is named",
    ),
    (
        "env railyard unknown",
        {"env": {"A": "${{ railyard.tenant }}"}},
        "services.web.env.A",
        "railyard.*",
    ),
    (
        "env service attr",
        {"env": {"A": "${{ services.web.port }}"}},
        "services.web.env.A",
        "services.<name>.url",
    ),
    (
        "env service short",
        {"env": {"A": "${{ services.web }}"}},
        "services.web.env.A",
        "services.<name>.url",
    ),
    ("env empty ref", {"env": {"A": "${{ }}"}}, "services.web.env.A", "unknown reference"),
    ("port zero", {"port": 0}, "services.web.port", "at least 1"),
    ("port too big", {"port": 65536}, "services.web.port", "at most 65535"),
    ("port negative", {"port": -80}, "services.web.port", "at least 1"),
    ("port string", {"port": "8080"}, "services.web.port", "expected a whole number"),
    ("port float", {"port": 80.5}, "services.web.port", "expected a whole number"),
    ("port bool", {"port": True}, "services.web.port", "expected a whole number"),
    ("replicas negative", {"replicas": -1}, "services.web.replicas", "at least 0"),
    ("replicas too many", {"replicas": 21}, "services.web.replicas", "at most 20"),
    ("replicas string", {"replicas": "two"}, "services.web.replicas", "whole number"),
    (
        "healthcheck word interval",
        {"healthcheck": {"interval": "ten"}},
        "services.web.healthcheck.interval",
        'expected a duration like "10s"',
    ),
    (
        "healthcheck bare number",
        {"healthcheck": {"interval": 10}},
        "services.web.healthcheck.interval",
        "add a unit",
    ),
    (
        "healthcheck tiny interval",
        {"healthcheck": {"interval": "5ms"}},
        "services.web.healthcheck.interval",
        "between 100ms and 10m",
    ),
    (
        "healthcheck huge timeout",
        {"healthcheck": {"timeout": "1h"}},
        "services.web.healthcheck.timeout",
        "between",
    ),
    (
        "healthcheck unit typo",
        {"healthcheck": {"timeout": "10sec"}},
        "services.web.healthcheck.timeout",
        "duration",
    ),
    (
        "healthcheck negative",
        {"healthcheck": {"start_period": "-1s"}},
        "services.web.healthcheck.start_period",
        "duration",
    ),
    (
        "healthcheck bool",
        {"healthcheck": {"interval": True}},
        "services.web.healthcheck.interval",
        "duration",
    ),
    (
        "healthcheck retries zero",
        {"healthcheck": {"retries": 0}},
        "services.web.healthcheck.retries",
        "at least 1",
    ),
    (
        "healthcheck retries many",
        {"healthcheck": {"retries": 101}},
        "services.web.healthcheck.retries",
        "at most 100",
    ),
    (
        "healthcheck relative path",
        {"healthcheck": {"path": "healthz"}},
        "services.web.healthcheck.path",
        "URL path",
    ),
    (
        "healthcheck port",
        {"healthcheck": {"port": 70000}},
        "services.web.healthcheck.port",
        "at most",
    ),
    (
        "healthcheck typo",
        {"healthcheck": {"intervall": "1s"}},
        "services.web.healthcheck.intervall",
        'did you mean "interval"',
    ),
    (
        "healthcheck list",
        {"healthcheck": ["/healthz"]},
        "services.web.healthcheck",
        "expected a mapping",
    ),
    (
        "healthcheck path without port",
        {"port": None, "healthcheck": {"path": "/h"}},
        "services.web.healthcheck.path",
        "needs a",
    ),
    (
        "memory lowercase m",
        {"resources": {"memory": "512m"}},
        "services.web.resources.memory",
        "ambiguous",
    ),
    (
        "memory lowercase g",
        {"resources": {"memory": "1g"}},
        "services.web.resources.memory",
        "ambiguous",
    ),
    (
        "memory words",
        {"resources": {"memory": "lots"}},
        "services.web.resources.memory",
        'size like "256Mi"',
    ),
    (
        "memory too small",
        {"resources": {"memory": "1Mi"}},
        "services.web.resources.memory",
        "between 4Mi and 64Gi",
    ),
    (
        "memory too big",
        {"resources": {"memory": "65Gi"}},
        "services.web.resources.memory",
        "between 4Mi and 64Gi",
    ),
    (
        "memory bytes small",
        {"resources": {"memory": 1024}},
        "services.web.resources.memory",
        "between",
    ),
    ("memory float", {"resources": {"memory": 1.5}}, "services.web.resources.memory", "size like"),
    ("cpus zero", {"resources": {"cpus": 0}}, "services.web.resources.cpus", "at least 0.01"),
    ("cpus too many", {"resources": {"cpus": 65}}, "services.web.resources.cpus", "at most 64"),
    (
        "cpus string",
        {"resources": {"cpus": "half"}},
        "services.web.resources.cpus",
        "expected a number",
    ),
    ("cpus nan", {"resources": {"cpus": float("nan")}}, "services.web.resources.cpus", "finite"),
    ("cpus inf", {"resources": {"cpus": float("inf")}}, "services.web.resources.cpus", "finite"),
    ("pids low", {"resources": {"pids": 15}}, "services.web.resources.pids", "at least 16"),
    ("pids high", {"resources": {"pids": 32769}}, "services.web.resources.pids", "at most 32768"),
    (
        "resources typo",
        {"resources": {"mem": "1Gi"}},
        "services.web.resources.mem",
        'did you mean "memory"',
    ),
    (
        "route uppercase",
        {"routes": [{"host": "App.Example.com"}]},
        "services.web.routes[0].host",
        'write "app.example.com"',
    ),
    (
        "route scheme",
        {"routes": [{"host": "https://a.example.com"}]},
        "services.web.routes[0].host",
        "without a scheme",
    ),
    (
        "route host port",
        {"routes": [{"host": "a.example.com:8080"}]},
        "services.web.routes[0].host",
        "no port",
    ),
    (
        "route host path",
        {"routes": [{"host": "a.example.com/api"}]},
        "services.web.routes[0].host",
        "under 'path'",
    ),
    (
        "route underscore",
        {"routes": [{"host": "a_b.example.com"}]},
        "services.web.routes[0].host",
        "DNS host name",
    ),
    (
        "route wildcard",
        {"routes": [{"host": "*.example.com"}]},
        "services.web.routes[0].host",
        "DNS host name",
    ),
    (
        "route trailing dash",
        {"routes": [{"host": "a-.example.com"}]},
        "services.web.routes[0].host",
        "DNS host name",
    ),
    (
        "route long label",
        {"routes": [{"host": "a" * 64 + ".com"}]},
        "services.web.routes[0].host",
        "DNS host name",
    ),
    (
        "route empty host",
        {"routes": [{"host": ""}]},
        "services.web.routes[0].host",
        "DNS host name",
    ),
    (
        "route missing host",
        {"routes": [{"path": "/"}]},
        "services.web.routes[0]",
        'missing required key "host"',
    ),
    (
        "route relative path",
        {"routes": [{"host": "a.example.com", "path": "api"}]},
        "services.web.routes[0].path",
        'starts with "/"',
    ),
    (
        "route dotdot path",
        {"routes": [{"host": "a.example.com", "path": "/a/../b"}]},
        "services.web.routes[0].path",
        "path prefix",
    ),
    (
        "route space path",
        {"routes": [{"host": "a.example.com", "path": "/a b"}]},
        "services.web.routes[0].path",
        "path prefix",
    ),
    (
        "route strip string",
        {"routes": [{"host": "a.example.com", "strip_prefix": "yes"}]},
        "services.web.routes[0].strip_prefix",
        "true or false",
    ),
    (
        "route typo",
        {"routes": [{"hostname": "a.example.com"}]},
        "services.web.routes[0].hostname",
        'did you mean "host"',
    ),
    (
        "routes mapping",
        {"routes": {"host": "a.example.com"}},
        "services.web.routes",
        "expected a list",
    ),
    (
        "routes need port",
        {"port": None, "routes": [{"host": "a.example.com"}]},
        "services.web.routes",
        'needs a "port"',
    ),
    (
        "duplicate route",
        {"routes": [{"host": "a.example.com"}, {"host": "a.example.com", "path": "/"}]},
        "services.web.routes[1]",
        "already routed",
    ),
    (
        "volume host path",
        {"volumes": ["./data:/data"]},
        "services.web.volumes[0]",
        "host folders cannot be mounted",
    ),
    ("volume absolute host", {"volumes": ["/etc:/etc"]}, "services.web.volumes[0]", "host folders"),
    ("volume no colon", {"volumes": ["data"]}, "services.web.volumes[0]", "name:/path"),
    (
        "volume relative target",
        {"volumes": ["data:var/lib"]},
        "services.web.volumes[0]",
        "absolute path",
    ),
    ("volume root target", {"volumes": ["data:/"]}, "services.web.volumes[0]", "absolute path"),
    (
        "volume dotdot target",
        {"volumes": ["data:/a/../b"]},
        "services.web.volumes[0]",
        "absolute path",
    ),
    ("volume options", {"volumes": ["data:/d:ro"]}, "services.web.volumes[0]", "options"),
    ("volume bad name", {"volumes": ["da ta:/d"]}, "services.web.volumes[0]", "volume name"),
    ("volume twice", {"volumes": ["a:/d", "b:/d"]}, "services.web.volumes[1]", "already mounted"),
    (
        "volume mapping",
        {"volumes": [{"name": "a", "path": "/d"}]},
        "services.web.volumes[0]",
        "name:/path",
    ),
    (
        "deploy strategy",
        {"deploy": {"strategy": "blue-green"}},
        "services.web.deploy.strategy",
        "'rolling' or 'recreate'",
    ),
    (
        "deploy drain negative",
        {"deploy": {"drain_seconds": -1}},
        "services.web.deploy.drain_seconds",
        "at least 0",
    ),
    (
        "deploy drain huge",
        {"deploy": {"drain_seconds": 7200}},
        "services.web.deploy.drain_seconds",
        "at most 3600",
    ),
    (
        "deploy drain duration",
        {"deploy": {"drain_seconds": "5s"}},
        "services.web.deploy.drain_seconds",
        "expected a number",
    ),
    (
        "deploy typo",
        {"deploy": {"stratgy": "rolling"}},
        "services.web.deploy.stratgy",
        'did you mean "strategy"',
    ),
    (
        "depends on unknown",
        {"depends_on": ["dbb"]},
        "services.web.depends_on[0]",
        'unknown service "dbb"',
    ),
    ("depends on self", {"depends_on": ["web"]}, "services.web.depends_on[0]", "itself"),
    ("depends on string", {"depends_on": "db"}, "services.web.depends_on", "expected a list"),
    (
        "depends on bad name",
        {"depends_on": ["DB"]},
        "services.web.depends_on[0]",
        "not a valid service name",
    ),
    (
        "service typo key",
        {"helthcheck": {}},
        "services.web.helthcheck",
        'did you mean "healthcheck"',
    ),
    ("service env typo", {"environment": {}}, "services.web.environment", "unknown key"),
    ("service unknown far", {"zzz": 1}, "services.web.zzz", "expected one of: image, build"),
    (
        "url of routeless",
        {"env": {"U": "${{ services.web.url }}"}},
        "services.web.env.U",
        "has no routes",
    ),
    (
        "internal url without port",
        {"port": None, "env": {"U": "${{ services.web.internal_url }}"}},
        "services.web.env.U",
        "has no port",
    ),
    (
        "reference unknown service",
        {"env": {"U": "${{ services.api.url }}"}},
        "services.web.env.U",
        'unknown service "api"',
    ),
    (
        "capability outside the allow-list",
        {"capabilities": ["CHOWN", "SYS_ADMIN"]},
        "services.web.capabilities[1]",
        'capability "SYS_ADMIN" is not allowed; a service may add only CHOWN, DAC_OVERRIDE,',
    ),
    (
        "capability ALL",
        {"capabilities": ["all"]},
        "services.web.capabilities[0]",
        'capability "all" is not allowed',
    ),
    (
        "capability with prefix outside the allow-list",
        {"capabilities": ["CAP_NET_ADMIN"]},
        "services.web.capabilities[0]",
        'capability "CAP_NET_ADMIN" is not allowed',
    ),
    (
        "capability typo",
        {"capabilities": ["CAP_CHWON"]},
        "services.web.capabilities[0]",
        'unknown capability "CAP_CHWON"; did you mean "CHOWN"?',
    ),
    (
        "capability unknown",
        {"capabilities": ["FLY"]},
        "services.web.capabilities[0]",
        'unknown capability "FLY"; a service may add only CHOWN',
    ),
    (
        "capability number",
        {"capabilities": [7]},
        "services.web.capabilities[0]",
        'expected a capability name like "CHOWN", got 7',
    ),
    (
        "capabilities as one string",
        {"capabilities": "CHOWN"},
        "services.web.capabilities",
        'expected a list, got "CHOWN"',
    ),
]


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [(f, p, m) for _, f, p, m in INVALID_SERVICE],
    ids=[name for name, *_ in INVALID_SERVICE],
)
def test_invalid_service_fields(fields: dict[str, Any], path: str, fragment: str) -> None:
    problems = errors_of(with_service(**fields))
    assert any(p == path and fragment in m for p, m in problems), problems


INVALID_TOP: list[tuple[str, str, str, str]] = [
    ("empty file", "", "", "empty"),
    ("comment only", "# nothing\n", "", "empty"),
    ("a list", "- a\n- b\n", "", "expected a mapping"),
    ("a scalar", "hello\n", "", "expected a mapping"),
    ("no version", "services:\n  web: {image: nginx}\n", "", 'missing required key "version"'),
    ("version 2", "version: 2\nservices:\n  web: {image: nginx}\n", "version", "version 1, got 2"),
    ("version string", "version: '1'\nservices:\n  web: {image: nginx}\n", "version", 'got "1"'),
    ("version true", "version: true\nservices:\n  web: {image: nginx}\n", "version", "got true"),
    ("version float", "version: 1.0\nservices:\n  web: {image: nginx}\n", "version", "got 1.0"),
    ("no services", "version: 1\n", "services", 'declare "services"'),
    ("empty services", "version: 1\nservices: {}\n", "services", "at least one"),
    ("services list", "version: 1\nservices: [web]\n", "services", "expected a mapping"),
    ("service null", "version: 1\nservices:\n  web:\n", "services.web", "expected a mapping"),
    (
        "service name upper",
        "version: 1\nservices:\n  Web: {image: nginx}\n",
        "services.Web",
        'for example "web"',
    ),
    (
        "service name underscore",
        "version: 1\nservices:\n  my_web: {image: nginx}\n",
        "services.my_web",
        '"my-web"',
    ),
    (
        "service name long",
        f"version: 1\nservices:\n  {'a' * 64}: {{image: nginx}}\n",
        f"services.{'a' * 64}",
        "at most 63",
    ),
    (
        "service name dash start",
        "version: 1\nservices:\n  -web: {image: nginx}\n",
        "services.-web",
        "not a valid service name",
    ),
    (
        "top typo",
        "version: 1\nservics:\n  web: {image: nginx}\n",
        "servics",
        'did you mean "services"',
    ),
    (
        "top unknown",
        "version: 1\nname: shop\nservices:\n  web: {image: nginx}\n",
        "name",
        "unknown key",
    ),
    (
        "services and compose",
        "version: 1\ncompose: c.yaml\nservices:\n  web: {image: nginx}\n",
        "services",
        "not both",
    ),
    (
        "routes without compose",
        "version: 1\nroutes: {}\nservices:\n  web: {image: nginx}\n",
        "routes",
        'goes with "compose"',
    ),
    (
        "compose absolute",
        "version: 1\ncompose: /etc/compose.yaml\n",
        "compose",
        "inside the repository",
    ),
    ("compose escape", "version: 1\ncompose: ../compose.yaml\n", "compose", '".."'),
    (
        "duplicate top key",
        "version: 1\nversion: 1\nservices:\n  web: {image: nginx}\n",
        "version",
        "duplicate key",
    ),
    (
        "duplicate service",
        "version: 1\nservices:\n  web: {image: a}\n  web: {image: b}\n",
        "services.web",
        "duplicate key",
    ),
    (
        "duplicate env",
        "version: 1\nservices:\n  web:\n    image: a\n    env: {A: 1, A: 2}\n",
        "services.web.env.A",
        "first written on line 5",
    ),
    ("bad yaml", "version: 1\nservices: [\n", "", "not valid YAML"),
    ("tab indent", "version: 1\nservices:\n\tweb: {}\n", "", "not valid YAML"),
    ("two documents", "version: 1\n---\nversion: 1\n", "", "not valid YAML"),
    (
        "custom tag",
        "version: 1\nservices:\n  web: !Ref x\n",
        "services.web",
        "unsupported YAML tag !Ref",
    ),
    (
        "binary tag",
        "version: 1\nservices:\n  web:\n    image: !!binary aGk=\n",
        "services.web.image",
        "!!binary",
    ),
    ("set tag", "version: 1\nservices: !!set {a}\n", "services", "!!set"),
    (
        "complex key",
        "version: 1\nservices:\n  ? [a]\n  : {image: x}\n",
        "services",
        "plain strings",
    ),
    (
        "cycle",
        "version: 1\n"
        "services:\n"
        "  a: {image: x, depends_on: [b]}\n"
        "  b: {image: x, depends_on: [a]}\n",
        "services.a.depends_on",
        "dependency cycle: a -> b -> a",
    ),
    (
        "long cycle",
        "version: 1\n"
        "services:\n"
        "  a: {image: x, depends_on: [b]}\n"
        "  b: {image: x, depends_on: [c]}\n"
        "  c: {image: x, depends_on: [a]}\n",
        "services.a.depends_on",
        "a -> b -> c -> a",
    ),
    (
        "cross-service route clash",
        "version: 1\n"
        "services:\n"
        "  a: {image: x, port: 1, routes: [{host: h.io}]}\n"
        "  b: {image: x, port: 1, routes: [{host: h.io, path: /}]}\n",
        "services.b.routes[0]",
        'already routed to service "a"',
    ),
    (
        "previews typo",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {enable: false}\n",
        "previews.enable",
        'did you mean "enabled"',
    ),
    (
        "previews unknown service",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {services: [wbe]}\n",
        "previews.services[0]",
        'did you mean "web"',
    ),
    (
        "previews unknown placeholder",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {host: 'pr-{number}.x.io'}\n",
        "previews.host",
        "unknown placeholder {number}",
    ),
    (
        "previews format spec",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {host: 'pr-{pr:03}.x.io'}\n",
        "previews.host",
        "plainly",
    ),
    (
        "previews unbalanced",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {host: 'pr-{pr.x.io'}\n",
        "previews.host",
        "not a valid template",
    ),
    (
        "previews bad host",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {host: 'PR_{pr}.x.io'}\n",
        "previews.host",
        "valid host name",
    ),
    (
        "previews ttl bare",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {ttl: 3}\n",
        "previews.ttl",
        "add a unit",
    ),
    (
        "previews ttl short",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {ttl: 10s}\n",
        "previews.ttl",
        "between 1m and 365d",
    ),
    (
        "previews enabled string",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {enabled: 'no'}\n",
        "previews.enabled",
        "true or false",
    ),
    (
        "previews env null",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {env: {A: null}}\n",
        "previews.env.A",
        'write ""',
    ),
    (
        "previews secret name",
        "version: 1\nservices:\n  web: {image: x}\npreviews: {secrets: [a-b]}\n",
        "previews.secrets[0]",
        "secret name",
    ),
    (
        "previews missing dependency",
        "version: 1\n"
        "services:\n"
        "  web: {image: x, depends_on: [db]}\n"
        "  db: {image: y}\n"
        "previews: {services: [web]}\n",
        "previews.services",
        'add "db" to previews.services',
    ),
    (
        "previews get production secret",
        "version: 1\nservices:\n  web: {image: x, env: {DB: '${{ secrets.DB }}'}}\npreviews: {}\n",
        "services.web.env.DB",
        "list it in previews.secrets",
    ),
    (
        "previews env secret unshared",
        "version: 1\n"
        "services:\n"
        "  web: {image: x}\n"
        "previews: {env: {DB: '${{ secrets.PREVIEW_DB }}'}}\n",
        "previews.env.DB",
        "previews.secrets",
    ),
    (
        "previews host clash",
        "version: 1\n"
        "services:\n"
        "  a: {image: x, port: 1, routes: [{host: a.io}]}\n"
        "  b: {image: x, port: 1, routes: [{host: b.io}]}\n"
        "previews: {host: 'pr-{pr}.{base_domain}'}\n",
        "previews.host",
        "put {service} in the host template",
    ),
    (
        "previews host too long for a service",
        f"version: 1\nservices:\n  {'s' * 60}: {{image: x, port: 1, routes: [{{host: a.io}}]}}\n"
        "previews: {}\n",
        "previews.host",
        "not a valid host name",
    ),
    (
        "previews env references unknown service",
        "version: 1\n"
        "services:\n"
        "  web: {image: x}\n"
        "previews: {env: {U: '${{ services.api.url }}'}}\n",
        "previews.env.U",
        'unknown service "api"',
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [(t, p, m) for _, t, p, m in INVALID_TOP],
    ids=[name for name, *_ in INVALID_TOP],
)
def test_invalid_manifests(text: str, path: str, fragment: str) -> None:
    problems = errors_of(text)
    assert any(p == path and fragment in m for p, m in problems), problems


def test_a_disabled_preview_does_not_check_preview_secrets() -> None:
    text = (
        "version: 1\n"
        "services:\n"
        "  web: {image: x, env: {DB: '${{ secrets.DB }}'}}\n"
        "previews:\n"
        "  enabled: false\n"
    )
    assert parse_manifest(text).previews.enabled is False


def test_a_shared_or_overridden_secret_is_accepted_for_previews() -> None:
    text = (
        "version: 1\nservices:\n  web:\n    image: x\n    env:\n"
        "      DB: ${{ secrets.DB }}\n      KEY: ${{ secrets.KEY }}\n"
        "previews:\n  secrets: [KEY]\n  env: {DB: 'sqlite:///tmp/db'}\n"
    )
    manifest = parse_manifest(text)
    assert manifest.previews.secrets == ("KEY",)


def test_defaults_of_a_minimal_manifest() -> None:
    manifest = parse_manifest("version: 1\nservices:\n  web:\n    image: nginx\n")
    service = manifest.service_specs()["web"]
    assert (service.replicas, service.port, service.routes, service.env) == (1, None, (), {})
    assert service.capabilities == ()
    previews = manifest.previews
    assert not previews.enabled and previews.require_approval_for_forks
    assert previews.host == "{service}-pr-{pr}.{app}.{base_domain}"
    assert previews.ttl == 7 * 86400
    assert previews.services is None and previews.secrets == ()


def test_a_capability_outside_the_allow_list_is_reported_where_it_is_written() -> None:
    text = (
        "version: 1\nservices:\n  web:\n    image: nginx\n    capabilities: [CHOWN, SYS_PTRACE]\n"
    )
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert [str(issue) for issue in caught.value.issues] == [
        'paas.yaml:5:27: services.web.capabilities[1]: capability "SYS_PTRACE" is not allowed; '
        "a service may add only CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE, "
        "SETGID, SETUID"
    ]


def test_a_manifest_is_frozen() -> None:
    manifest = parse_manifest("version: 1\nservices:\n  web:\n    image: nginx\n")
    field = "compose"
    with pytest.raises(ValueError, match="frozen"):
        setattr(manifest, field, "x")


def test_several_errors_are_reported_at_once_in_file_order() -> None:
    text = (
        "version: 1\n"
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    port: 99999\n"
        "    replicas: 50\n"
        "    helthcheck: {}\n"
    )
    problems = errors_of(text)
    assert [path for path, _ in problems] == [
        "services.web.port",
        "services.web.replicas",
        "services.web.helthcheck",
    ]


def test_bytes_and_a_bom_are_read_as_utf8() -> None:
    text = "\ufeffversion: 1\nservices:\n  web:\n    image: nginx\n    env: {GREETING: 'grüß'}\n"
    manifest = parse_manifest(text.encode("utf-8"))
    assert manifest.service_specs()["web"].env["GREETING"] == "grüß"


def test_yaml_one_one_words_stay_text_in_env() -> None:
    text = (
        "version: 1\n"
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    env: {A: yes, B: on, C: 0x1F, D: 1.50, E: 2024-01-01}\n"
    )
    env = parse_manifest(text).service_specs()["web"].env
    assert dict(env) == {"A": "yes", "B": "on", "C": "0x1F", "D": "1.50", "E": "2024-01-01"}


def test_top_level_x_keys_hold_anchors_and_are_otherwise_ignored() -> None:
    text = (
        "version: 1\n"
        "x-common: &common\n"
        "  image: nginx\n"
        "  env: {A: '1'}\n"
        "services:\n"
        "  web:\n"
        "    <<: *common\n"
        "    port: 80\n"
        "  api:\n"
        "    <<: *common\n"
        "    image: httpd\n"
    )
    services = parse_manifest(text).service_specs()
    assert (services["web"].image, services["web"].port, services["web"].env["A"]) == (
        "nginx",
        80,
        "1",
    )
    assert services["api"].image == "httpd"


def test_x_keys_inside_a_service_are_not_ignored() -> None:
    problems = errors_of(with_service(**{"x-note": "hi"}))
    assert problems[0][0] == "services.web.x-note"


def test_merge_keys_give_explicit_keys_precedence() -> None:
    text = (
        "version: 1\n"
        "services:\n"
        "  web: &base\n"
        "    image: nginx\n"
        "    port: 80\n"
        "  api:\n"
        "    <<: *base\n"
        "    image: httpd\n"
    )
    services = parse_manifest(text).service_specs()
    assert (services["api"].image, services["api"].port) == ("httpd", 80)
