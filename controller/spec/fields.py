"""The manifest's value types: each checks its input and says, in words, what it expected.

Every type carries its JSON Schema (``WithJsonSchema``) so that the published
schema accepts what the parser accepts. Messages are written for the person
reading ``railyard validate`` output: what was expected, what was found, and
the fix when there is an obvious one.
"""

from __future__ import annotations

import json
import re
import shlex
import string
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, BeforeValidator, Field, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

from controller.spec import durations, sizes
from controller.spec.interpolation import SECRET_NAME, find_references

DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
HOSTNAME = (
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
ROUTE_PATH = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$"
REPO_PATH = r"^(?!/)(?!~)(?!.*(^|/)\.\.(/|$))[^\\\x00-\x1f]+$"
VOLUME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}:/[^:\x00]*$"
IMAGE = (
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
HOST_PLACEHOLDERS = ("pr", "branch_slug", "app", "service", "base_domain")
SAMPLE_PLACEHOLDERS = {
    "pr": "12",
    "branch_slug": "feature-x",
    "app": "shop",
    "service": "web",
    "base_domain": "example.com",
}

_DNS_LABEL = re.compile(DNS_LABEL)
_HOSTNAME = re.compile(HOSTNAME)
_ENV_NAME = re.compile(ENV_NAME)
_ROUTE_PATH = re.compile(ROUTE_PATH)
_REPO_PATH = re.compile(REPO_PATH)
_IMAGE = re.compile(IMAGE)
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


def fail(kind: str, message: str) -> NoReturn:
    """Raise a validation error whose text is exactly ``message``."""
    raise PydanticCustomError(kind, "{message}", {"message": message})


def show(value: Any) -> str:
    """A short, quoted rendering of what the user wrote, for "got ..." in messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = json.dumps(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scalar_text(value: Any) -> str:
    """The rule for env values, build args and command words: scalars become their text.

    The YAML loader already keeps the text as written (``8080``, ``true``, ``1.50``);
    this covers values that reach the model another way (Compose, Python callers):
    booleans become ``true``/``false``, numbers their decimal form.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        fail("missing_value", 'has no value; write "" for an empty string')
    fail("string_type", f"expected a string, got {show(value)}")


def _env_value(value: str) -> str:
    try:
        find_references(value)
    except ValueError as exc:
        fail("reference", str(exc))
    return value


def _no_references(value: str) -> str:
    if "${{" in value:
        fail("reference", "${{ ... }} references are only filled in inside env values")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        fail("env_name", f"{show(value)} is not a valid variable name (letters, digits, _)")
    return value


def _secret_name(value: str) -> str:
    if not SECRET_NAME.fullmatch(value):
        fail("secret_name", f"{show(value)} is not a valid secret name (letters, digits, _)")
    return value


def _service_name(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        hint = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:63]
        suggestion = f'; for example "{hint}"' if hint and _DNS_LABEL.fullmatch(hint) else ""
        fail(
            "service_name",
            f"{show(value)} is not a valid service name: lowercase letters, digits and '-', "
            f"at most 63 characters{suggestion}",
        )
    return value


def check_hostname(value: str) -> str:
    """A lowercase DNS name without scheme, port or path."""
    if "://" in value:
        fail("hostname", f"write the host name only, without a scheme: {show(value)}")
    host = value
    if "/" in host:
        fail("hostname", f"write the path under 'path', not in the host: {show(value)}")
    if ":" in host:
        fail("hostname", f"a route host takes no port: {show(value)}")
    if host != host.lower() and _HOSTNAME.fullmatch(host.lower()):
        fail("hostname", f"host names are lowercase: write {show(host.lower())}")
    if not _HOSTNAME.fullmatch(host):
        fail("hostname", f'expected a DNS host name like "app.example.com", got {show(value)}')
    return value


def _route_path(value: str) -> str:
    if not value.startswith("/"):
        fail("route_path", f'a route path starts with "/", got {show(value)}')
    if not _ROUTE_PATH.fullmatch(value) or "/../" in value + "/" or "//" in value:
        fail("route_path", f'expected a URL path prefix like "/api", got {show(value)}')
    return value


def _health_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() for c in value):
        fail("health_path", f'expected a URL path like "/healthz", got {show(value)}')
    return value


def check_repo_path(value: str) -> str:
    """A path inside the repository: relative, and never climbing out with ``..``."""
    if not value:
        fail("repo_path", 'must not be empty; use "." for the repository\'s top folder')
    if value.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", value):
        fail("repo_path", f"must be a path inside the repository, not {show(value)}")
    if "\\" in value:
        fail("repo_path", f"use '/' to separate folders: {show(value)}")
    if any(ord(char) < 0x20 for char in value):
        fail("repo_path", f"must not contain control characters: {show(value)}")
    if ".." in value.split("/"):
        fail("repo_path", f'must stay inside the repository (no ".."): {show(value)}')
    return value


def _image(value: str) -> str:
    if value != value.lower() and _IMAGE.fullmatch(value.lower()):
        fail("image", f"image names are lowercase: {show(value)}")
    if not _IMAGE.fullmatch(value):
        fail(
            "image",
            f'expected an image reference like "nginx:1.27" or "ghcr.io/acme/web:1.0", '
            f"got {show(value)}",
        )
    return value


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            fail("command", f"cannot split this command into words: {exc}")
    elif isinstance(value, list | tuple):
        words = []
        for index, word in enumerate(value):
            if isinstance(word, dict | list | tuple) or word is None:
                fail("command", f"word {index} of the command is {show(word)}, not a string")
            words.append(scalar_text(word))
    else:
        fail("command", f"expected a list of words or a command string, got {show(value)}")
    if not words:
        fail("command", "must not be empty; leave it out to use the image's default")
    for word in words:
        _no_references(word)
    return tuple(words)


def duration_parser(minimum: float, maximum: float) -> Callable[[Any], float]:
    """Reads a duration and checks it lies between ``minimum`` and ``maximum`` seconds."""

    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            fail("duration", f'expected a duration like "10s", got {show(value)}')
        if isinstance(value, int | float):
            if value != 0:
                fail("duration", f'add a unit to {value}: "{value}s" or "{value}ms"')
            seconds = 0.0
        else:
            try:
                seconds = durations.parse_duration(value)
            except ValueError as exc:
                fail("duration", str(exc))
        if not minimum <= seconds <= maximum:
            low, high = durations.format_duration(minimum), durations.format_duration(maximum)
            fail("duration", f"must be between {low} and {high}, got {show(value)}")
        return seconds

    return parse


def size_parser(minimum: int, maximum: int) -> Callable[[Any], int]:
    """Reads a byte size and checks it lies between ``minimum`` and ``maximum``."""

    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            fail("size", f'expected a size like "256Mi", got {show(value)}')
        try:
            size = sizes.parse_size(value) if isinstance(value, str) else value
        except ValueError as exc:
            fail("size", str(exc))
        if not minimum <= size <= maximum:
            low, high = sizes.format_size(minimum), sizes.format_size(maximum)
            fail("size", f"must be between {low} and {high}, got {show(value)}")
        return size

    return parse


def _duration_schema(minimum: float, maximum: float) -> WithJsonSchema:
    low, high = durations.format_duration(minimum), durations.format_duration(maximum)
    return WithJsonSchema(
        {
            "oneOf": [{"type": "string", "pattern": durations.PATTERN}, {"const": 0}],
            "description": f"A duration from {low} to {high}: ms, s, m, h or d, e.g. 500ms, 10s.",
        }
    )


def _size_schema(minimum: int, maximum: int) -> WithJsonSchema:
    low, high = sizes.format_size(minimum), sizes.format_size(maximum)
    return WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "pattern": sizes.PATTERN},
                {"type": "integer", "minimum": minimum, "maximum": maximum},
            ],
            "description": f"From {low} to {high}: 256Mi, 1Gi (binary), 512M (decimal) or bytes.",
        }
    )


def _host_template(value: str) -> str:
    try:
        fields = list(string.Formatter().parse(value))
    except ValueError as exc:
        fail("host_template", f"not a valid template ({exc}); write placeholders like {{pr}}")
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in HOST_PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in HOST_PLACEHOLDERS)
            fail("host_template", f"unknown placeholder {{{name}}}; known: {known}")
        if spec or conversion:
            fail("host_template", f"write the placeholder plainly as {{{name}}}")
    sample = value.format(**SAMPLE_PLACEHOLDERS)
    try:
        check_hostname(sample)
    except PydanticCustomError:
        fail(
            "host_template",
            f"does not make a valid host name (for PR 12 it gives {show(sample)}); "
            'use lowercase letters, digits, "-" and "." around the placeholders',
        )
    return value


def _volume(value: Any) -> Any:
    if not isinstance(value, str):
        fail("volume", f'expected "name:/path/in/container", got {show(value)}')
    name, sep, path = value.partition(":")
    if not sep:
        fail("volume", f'expected "name:/path/in/container", got {show(value)}')
    if name.startswith((".", "/", "~")) or "/" in name:
        fail(
            "volume",
            f"host folders cannot be mounted, only named volumes: write "
            f'"data:{path or "/data"}" instead of {show(value)}',
        )
    if not _VOLUME_NAME.fullmatch(name):
        fail("volume", f"{show(name)} is not a valid volume name (letters, digits, _ . -)")
    if ":" in path:
        fail("volume", f"mount options are not supported: {show(value)}")
    if not path.startswith("/") or ".." in path.split("/") or path == "/":
        fail("volume", f"the mount point must be an absolute path below /, got {show(path)}")
    return {"name": name, "path": path}


ServiceName = Annotated[
    str,
    AfterValidator(_service_name),
    WithJsonSchema({"type": "string", "pattern": DNS_LABEL, "maxLength": 63}),
]
EnvName = Annotated[str, AfterValidator(_env_name), WithJsonSchema({"pattern": ENV_NAME})]
SecretName = Annotated[
    str, AfterValidator(_secret_name), WithJsonSchema({"type": "string", "pattern": ENV_NAME})
]
TextValue = Annotated[
    str,
    BeforeValidator(scalar_text),
    AfterValidator(_no_references),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
EnvValue = Annotated[
    str,
    BeforeValidator(scalar_text),
    AfterValidator(_env_value),
    WithJsonSchema(
        {
            "type": ["string", "number", "boolean"],
            "description": "Text; numbers and booleans are taken as written. "
            "May contain ${{ secrets.NAME }}, ${{ railyard.pr }} and other references.",
        }
    ),
]
HostName = Annotated[
    str,
    AfterValidator(check_hostname),
    WithJsonSchema({"type": "string", "pattern": HOSTNAME, "examples": ["app.example.com"]}),
]
HostTemplate = Annotated[
    str,
    AfterValidator(_host_template),
    WithJsonSchema({"type": "string", "examples": ["{service}-pr-{pr}.{app}.{base_domain}"]}),
]
RoutePath = Annotated[
    str,
    AfterValidator(_route_path),
    WithJsonSchema({"type": "string", "pattern": ROUTE_PATH, "examples": ["/", "/api"]}),
]
HealthPath = Annotated[
    str,
    AfterValidator(_health_path),
    WithJsonSchema({"type": "string", "pattern": r"^/\S*$", "examples": ["/healthz"]}),
]
RepoPath = Annotated[
    str,
    AfterValidator(check_repo_path),
    WithJsonSchema({"type": "string", "pattern": REPO_PATH, "minLength": 1}),
]
ImageRef = Annotated[
    str,
    AfterValidator(_image),
    WithJsonSchema({"type": "string", "pattern": IMAGE, "examples": ["nginx:1.27"]}),
]
CommandLine = Annotated[
    tuple[str, ...],
    BeforeValidator(_command),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "items": {"type": ["string", "number", "boolean"]},
                    "minItems": 1,
                },
            ],
            "examples": [["python", "-m", "app"], "gunicorn app:wsgi -b 0.0.0.0:8000"],
        }
    ),
]
VolumeInput = BeforeValidator(_volume)
VOLUME_SCHEMA = WithJsonSchema({"type": "string", "pattern": VOLUME, "examples": ["data:/data"]})
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]

_PROBE_LIMITS = (0.1, 600.0)
_START_LIMITS = (0.0, 3600.0)
_TTL_LIMITS = (60.0, 365 * 86400.0)
_MEMORY_LIMITS = (4 * 2**20, 64 * 2**30)
ProbeDuration = Annotated[
    float, BeforeValidator(duration_parser(*_PROBE_LIMITS)), _duration_schema(*_PROBE_LIMITS)
]
StartPeriod = Annotated[
    float, BeforeValidator(duration_parser(*_START_LIMITS)), _duration_schema(*_START_LIMITS)
]
PreviewTtl = Annotated[
    float, BeforeValidator(duration_parser(*_TTL_LIMITS)), _duration_schema(*_TTL_LIMITS)
]
MemoryBytes = Annotated[
    int, BeforeValidator(size_parser(*_MEMORY_LIMITS)), _size_schema(*_MEMORY_LIMITS)
]
