"""Translate one Docker Compose service into the shape of a paas.yaml service.

Each Compose key is either translated, ignored because Railyard already does
what it asks (``restart``, ``container_name``, ``networks``...), or refused
with its name and what to do instead: a deploy that silently dropped a
``secrets:`` or a bind mount would run, but not as its author meant.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from controller.spec.capabilities import ALLOWED_TEXT, is_allowed, suggestion
from controller.spec.fields import show
from controller.spec.sizes import parse_docker_bytes
from controller.spec.source_map import Path

SUPPORTED_SERVICE_KEYS = frozenset(
    {
        "image",
        "build",
        "command",
        "entrypoint",
        "environment",
        "ports",
        "expose",
        "healthcheck",
        "depends_on",
        "deploy",
        "volumes",
        "cpus",
        "mem_limit",
        "pids_limit",
        "cap_add",
    }
)
IGNORED_SERVICE_KEYS = {
    "container_name": "Railyard names containers itself",
    "restart": "Railyard keeps every replica running",
    "networks": "each environment gets its own network",
    "hostname": "services reach each other by service name",
    "stdin_open": "services run without a terminal",
    "tty": "services run without a terminal",
    "cap_drop": "Railyard drops every capability; cap_add adds some back",
}
UNSUPPORTED_HINTS = {
    "secrets": "reference secrets in env as ${{ secrets.NAME }} instead",
    "env_file": "list the variables under environment",
    "labels": "declare routes in paas.yaml under routes",
    "user": "set USER in the Dockerfile",
    "stop_signal": "Railyard stops replicas with SIGTERM after draining",
    "privileged": "containers never run privileged",
    "cap_add": f"containers run with capabilities dropped, except {ALLOWED_TEXT}",
    "network_mode": "each environment gets its own network",
    "profiles": "list only the services to deploy",
    "extends": "write the service out in full",
}
SUPPORTED_BUILD_KEYS = frozenset({"context", "dockerfile", "args", "target"})
SUPPORTED_HEALTHCHECK_KEYS = frozenset(
    {"test", "interval", "timeout", "retries", "start_period", "disable"}
)
SUPPORTED_DEPLOY_KEYS = frozenset({"replicas", "resources", "update_config"})
_HTTP_CHECK = re.compile(r"https?://(?:localhost|127\.0\.0\.1)(?::(\d+))?(/[^\s'\"]*)?")
_NAMED_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

Problem = tuple[Path, str]


def unsupported(key: str) -> str:
    hint = UNSUPPORTED_HINTS.get(key)
    return f"Compose key {show(key)} is not supported" + (f": {hint}" if hint else "")


@dataclass
class Translation:
    """A paas.yaml-shaped service, with where each of its parts came from in the Compose file."""

    spec: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def translate_service(name: str, body: Any, compose_dir: str) -> Translation:
    out = Translation()
    at: Path = ("services", name)
    if not isinstance(body, dict):
        out.problems.append((at, f"expected a mapping, got {show(body)}"))
        return out
    for key in body:
        known = key in SUPPORTED_SERVICE_KEYS or key in IGNORED_SERVICE_KEYS
        if not known and not key.startswith("x-"):
            out.problems.append(((*at, key), unsupported(key)))
    _ServiceReader(name, body, compose_dir, out).read()
    return out


class _ServiceReader:
    def __init__(self, name: str, body: dict[str, Any], compose_dir: str, out: Translation) -> None:
        self.name = name
        self.body = body
        self.compose_dir = compose_dir
        self.out = out
        self.at: Path = ("services", name)

    def problem(self, where: Path, message: str) -> None:
        self.out.problems.append(((*self.at, *where), message))

    def put(self, key: str, value: Any, origin: Path) -> None:
        self.out.spec[key] = value
        self.out.origins[(*self.at, key)] = (*self.at, *origin)

    def read(self) -> None:
        body = self.body
        if "build" in body:
            self._build(body["build"])
        elif "image" in body:
            self.put("image", body["image"], ("image",))
        for key in ("command", "entrypoint"):
            if key in body and body[key] is not None:
                self.put(key, body[key], (key,))
        if "environment" in body:
            self._environment(body["environment"])
        self._port()
        if "healthcheck" in body:
            self._healthcheck(body["healthcheck"])
        if "depends_on" in body:
            self._depends_on(body["depends_on"])
        if "volumes" in body:
            self._volumes(body["volumes"])
        if "cap_add" in body:
            self._cap_add(body["cap_add"])
        self._deploy()

    def _build(self, build: Any) -> None:
        if isinstance(build, str):
            build = {"context": build}
        if not isinstance(build, dict):
            self.problem(("build",), f"expected a folder or a mapping, got {show(build)}")
            return
        for key in build:
            if key not in SUPPORTED_BUILD_KEYS:
                self.problem(("build", key), unsupported(key))
        context = build.get("context", ".")
        spec: dict[str, Any] = {}
        if isinstance(context, str) and "://" in context:
            self.problem(("build", "context"), "remote build contexts are not supported")
        elif isinstance(context, str) and not context.startswith("/"):
            spec["context"] = posixpath.normpath(posixpath.join(self.compose_dir, context))
        else:
            spec["context"] = context
        for key in ("dockerfile", "target"):
            if key in build:
                spec[key] = build[key]
        if "args" in build:
            spec["args"] = self._pairs(build["args"], ("build", "args"))
        self.put("build", spec, ("build",))
        for key in spec:
            self.out.origins[(*self.at, "build", key)] = (*self.at, "build", key)

    def _pairs(self, value: Any, where: Path) -> dict[str, Any]:
        """``{K: V}`` or ``["K=V"]``; a name without a value would come from the shell."""
        pairs: dict[str, Any] = {}
        if isinstance(value, dict):
            items = [((*where, key), key, raw) for key, raw in value.items()]
        elif isinstance(value, list):
            items = []
            for index, entry in enumerate(value):
                key, sep, raw = str(entry).partition("=")
                items.append(((*where, index), key, raw if sep else None))
        else:
            self.problem(where, f"expected a mapping or a list of NAME=value, got {show(value)}")
            return pairs
        for origin, key, raw in items:
            if raw is None:
                self.problem(
                    origin,
                    f"{show(key)} takes its value from the shell running Compose; "
                    "write the value, or use ${{ secrets.NAME }} in paas.yaml",
                )
                continue
            pairs[key] = raw
            self.out.origins[(*self.at, *where, key)] = (*self.at, *origin)
        return pairs

    def _environment(self, value: Any) -> None:
        before = len(self.out.problems)
        env = self._pairs(value, ("environment",))
        for key in env:
            origin = self.out.origins.pop((*self.at, "environment", key))
            self.out.origins[(*self.at, "env", key)] = origin
        if len(self.out.problems) == before:
            self.put("env", env, ("environment",))

    def _port(self) -> None:
        ports = self.body.get("ports")
        if ports is None:
            expose = self.body.get("expose")
            if isinstance(expose, list) and len(expose) == 1:
                self._put_port(expose[0], ("expose", 0))
            return
        if not isinstance(ports, list):
            self.problem(("ports",), f"expected a list, got {show(ports)}")
            return
        targets: dict[int, Path] = {}
        for index, entry in enumerate(ports):
            target = self._container_port(entry, ("ports", index))
            if target is not None:
                targets.setdefault(target, ("ports", index))
        if len(targets) > 1:
            shown = ", ".join(str(port) for port in targets)
            self.problem(("ports",), f"Railyard routes one port per service; this lists {shown}")
        elif targets:
            ((target, origin),) = targets.items()
            self.put("port", target, origin)

    def _container_port(self, entry: Any, where: Path) -> int | None:
        """The container side of ``"8080:80"``, ``80``, ``"127.0.0.1:80:80/tcp"`` or long form."""
        if isinstance(entry, dict):
            if entry.get("protocol", "tcp") != "tcp":
                self.problem(where, "only TCP ports can be routed")
                return None
            entry = entry.get("target")
        text = str(entry)
        text, _, protocol = text.partition("/")
        if protocol and protocol != "tcp":
            self.problem(where, "only TCP ports can be routed")
            return None
        target = text.rsplit(":", 1)[-1]
        if not target.isdigit():
            self.problem(
                where, f"expected a port number or a range-free mapping, got {show(entry)}"
            )
            return None
        return int(target)

    def _put_port(self, entry: Any, where: Path) -> None:
        text = str(entry).partition("/")[0]
        if text.isdigit():
            self.put("port", int(text), where)

    def _healthcheck(self, check: Any) -> None:
        if not isinstance(check, dict):
            self.problem(("healthcheck",), f"expected a mapping, got {show(check)}")
            return
        for key in check:
            if key not in SUPPORTED_HEALTHCHECK_KEYS:
                self.problem(("healthcheck", key), unsupported(key))
        test = check.get("test")
        if check.get("disable") is True or test in (["NONE"], "NONE"):
            return
        spec: dict[str, Any] = {}
        for key in ("interval", "timeout", "retries", "start_period"):
            if key in check:
                spec[key] = check[key]
                self.out.origins[(*self.at, "healthcheck", key)] = (*self.at, "healthcheck", key)
        if isinstance(test, list):
            words = [str(word) for word in test]
        elif isinstance(test, str) or test is None:
            words = [test or ""]
        else:
            self.problem(("healthcheck", "test"), f"expected a command, got {show(test)}")
            return
        match = _HTTP_CHECK.search(" ".join(words))
        if match:
            # A command that fetches a local URL becomes Railyard's own HTTP check; any
            # other command becomes "the port accepts connections" with the same timings.
            spec["path"] = match.group(2) or "/"
            if match.group(1):
                spec["port"] = int(match.group(1))
        self.put("healthcheck", spec, ("healthcheck",))

    def _depends_on(self, value: Any) -> None:
        names: list[str] = []
        if isinstance(value, list):
            names = [str(name) for name in value]
        elif isinstance(value, dict):
            for name, condition in value.items():
                names.append(str(name))
                if not isinstance(condition, dict):
                    continue
                for key in condition:
                    if key not in ("condition", "required", "restart"):
                        self.problem(("depends_on", name, key), unsupported(key))
                if condition.get("condition") == "service_completed_successfully":
                    self.problem(
                        ("depends_on", name, "condition"),
                        "waiting for a service to exit is not supported; use release "
                        "for one-off commands",
                    )
        else:
            self.problem(("depends_on",), f"expected a list of services, got {show(value)}")
            return
        self.put("depends_on", names, ("depends_on",))

    def _volumes(self, value: Any) -> None:
        if not isinstance(value, list):
            self.problem(("volumes",), f"expected a list, got {show(value)}")
            return
        mounts: list[str] = []
        for index, entry in enumerate(value):
            mount = self._volume(entry, ("volumes", index))
            if mount is not None:
                self.out.origins[(*self.at, "volumes", len(mounts))] = (*self.at, "volumes", index)
                mounts.append(mount)
        self.put("volumes", mounts, ("volumes",))

    def _volume(self, entry: Any, where: Path) -> str | None:
        if isinstance(entry, dict):
            kind = entry.get("type", "volume")
            source, target = entry.get("source"), entry.get("target")
            if kind != "volume" or not source:
                self.problem(where, f"only named volumes can be mounted, not a {kind} mount")
                return None
            if entry.get("read_only"):
                self.problem((*where, "read_only"), "read-only volume mounts are not supported")
                return None
            return f"{source}:{target}"
        parts = str(entry).split(":")
        if len(parts) == 1 or not _NAMED_VOLUME.fullmatch(parts[0]):
            kind = "an anonymous volume" if len(parts) == 1 else "a host folder"
            self.problem(where, f"only named volumes (name:/path) can be mounted, not {kind}")
            return None
        if len(parts) > 2 and parts[2] != "rw":
            self.problem(where, f"volume mount options ({parts[2]}) are not supported")
            return None
        return f"{parts[0]}:{parts[1]}"

    def _cap_add(self, value: Any) -> None:
        """Allowed capabilities become ``capabilities``; any other is refused by name."""
        if not isinstance(value, list):
            self.problem(("cap_add",), f"expected a list, got {show(value)}")
            return
        for index, entry in enumerate(value):
            if not is_allowed(entry):
                reason = f"is not supported for {show(entry)}: {UNSUPPORTED_HINTS['cap_add']}"
                self.problem(
                    ("cap_add", index), f'Compose key "cap_add" {reason}{suggestion(entry)}'
                )
        self.put("capabilities", value, ("cap_add",))

    def _deploy(self) -> None:
        deploy = self.body.get("deploy")
        resources: dict[str, Any] = {}
        for legacy, key, where in (
            ("cpus", "cpus", ("cpus",)),
            ("mem_limit", "memory", ("mem_limit",)),
            ("pids_limit", "pids", ("pids_limit",)),
        ):
            if legacy in self.body:
                resources[key] = self.body[legacy]
                self.out.origins[(*self.at, "resources", key)] = (*self.at, *where)
        if isinstance(deploy, dict):
            self._deploy_section(deploy, resources)
        elif deploy is not None:
            self.problem(("deploy",), f"expected a mapping, got {show(deploy)}")
        if resources:
            if "cpus" in resources:
                resources["cpus"] = _number(resources["cpus"])
            if "memory" in resources:
                resources["memory"] = self._bytes(resources["memory"])
            self.out.spec["resources"] = resources

    def _mapping(self, value: Any, where: Path) -> dict[str, Any]:
        """``value`` when it is a mapping (or absent); else a problem and an empty mapping."""
        if value is None or isinstance(value, dict):
            return value or {}
        self.problem(where, f"expected a mapping, got {show(value)}")
        return {}

    def _deploy_section(self, deploy: dict[str, Any], resources: dict[str, Any]) -> None:
        for key in deploy:
            if key not in SUPPORTED_DEPLOY_KEYS:
                self.problem(("deploy", key), unsupported(key))
        if "replicas" in deploy:
            self.put("replicas", deploy["replicas"], ("deploy", "replicas"))
        limits_section = self._mapping(deploy.get("resources"), ("deploy", "resources"))
        for key in limits_section:
            if key != "limits":
                self.problem(("deploy", "resources", key), unsupported(key))
        limits = self._mapping(limits_section.get("limits"), ("deploy", "resources", "limits"))
        for key, value in limits.items():
            if key in ("cpus", "memory", "pids"):
                resources[key] = value
                where = (*self.at, "deploy", "resources", "limits", key)
                self.out.origins[(*self.at, "resources", key)] = where
            else:
                self.problem(("deploy", "resources", "limits", key), unsupported(key))
        update = self._mapping(deploy.get("update_config"), ("deploy", "update_config"))
        for key in update:
            if key != "order":
                self.problem(("deploy", "update_config", key), unsupported(key))
        order = update.get("order")
        if order is not None:
            strategy = {"start-first": "rolling", "stop-first": "recreate"}.get(str(order))
            self.out.spec["deploy"] = {"strategy": strategy or order}
            where = (*self.at, "deploy", "update_config", "order")
            self.out.origins[(*self.at, "deploy", "strategy")] = where

    def _bytes(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_docker_bytes(value)
            except ValueError:
                return value
        return value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
