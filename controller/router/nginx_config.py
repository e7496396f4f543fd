"""The text of Railyard's nginx edge config: the main file and one file per environment.

Pure: values in, config text out, so that tests can read exactly what nginx will be
told. Every environment gets an upstream per route (keepalive, no passive failure
marking: the reconciler decides health) and a server per host with a location per
path; a host without a ``/`` route answers 404 there, a route without healthy
upstreams answers 503.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from controller.state import EnvironmentKey, RouteTarget

_NO_PATH = 'default_type text/plain; return 404 "no route for this path\\n";'
_PROXY_SETTINGS = (
    "proxy_http_version 1.1;",
    "proxy_set_header Host $host;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header Connection $railyard_connection;",
    "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header X-Forwarded-Host $host;",
    "proxy_next_upstream error timeout http_502;",
    "proxy_connect_timeout 5s;",
)


def render_main_config(directory: Path, listen: str, includes: Sequence[str], user: str) -> str:
    temp = directory / "temp"
    lines = [
        "# Main config of Railyard's nginx edge; rewritten on every start.",
        f"user {user};" if user else "",
        "worker_processes 1;",
        f"pid {_quote(str(directory / 'nginx.pid'))};",
        f"error_log {_quote(str(directory / 'logs' / 'error.log'))} notice;",
        "events { worker_connections 4096; }",
        "http {",
        "    access_log off;",
        "    server_tokens off;",
        "    client_max_body_size 64m;",
        # On every reload nginx's old workers close their idle keep-alive connections; a
        # client that sends on one at that instant gets no response, and not every client
        # retries. Closing after each response removes that race (loopback connects are
        # cheap); upstream connections stay pooled.
        "    keepalive_timeout 0;",
        "    server_names_hash_bucket_size 128;",
        *(
            f"    {kind}_temp_path {_quote(str(temp / kind))};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
        '    map $http_upgrade $railyard_connection { default upgrade; "" ""; }',
        "    server {",
        f"        listen {listen} default_server;",
        "        server_name _;",
        "        default_type text/plain;",
        '        location / { return 404 "no route for this host\\n"; }',
        "    }",
        *(f"    include {_quote(include)};" for include in includes),
        "}",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def render_environment(key: EnvironmentKey, routes: Sequence[RouteTarget], listen: str) -> str:
    """One environment's upstreams and servers: a server per host, a location per path."""
    lines = [f"# Routes of {key}, rendered by Railyard: edits are overwritten.", ""]
    hosts: dict[str, list[RouteTarget]] = {}
    for route in routes:
        hosts.setdefault(route.host, []).append(route)
        if route.upstreams:
            lines.append(f"upstream {_upstream_name(key, route)} {{")
            lines.extend(f"    server {upstream} max_fails=0;" for upstream in route.upstreams)
            lines += ["    keepalive 16;", "}", ""]
    for host, host_routes in hosts.items():
        lines += ["server {", f"    listen {listen};", f"    server_name {host};"]
        for route in sorted(host_routes, key=lambda r: r.path):
            lines += _location(key, route)
        if all(route.path != "/" for route in host_routes):
            lines.append(f"    location / {{ {_NO_PATH} }}")
        lines += ["}", ""]
    return "\n".join(lines)


def _location(key: EnvironmentKey, route: RouteTarget) -> list[str]:
    lines = [f"    location {_quote(route.path)} {{"]
    if not route.upstreams:
        message = f"no healthy upstream for service {route.service}\n"
        lines += ["        default_type text/plain;", f"        return 503 {_quote(message)};"]
        return [*lines, "    }"]
    if route.strip_prefix and route.path != "/":
        prefix = route.path.rstrip("/")
        lines.append(
            f"        rewrite {_quote('^' + _regex_escape(prefix) + '/?(.*)$')} /$1 break;"
        )
        lines.append(f"        proxy_set_header X-Forwarded-Prefix {_quote(prefix)};")
    lines += [f"        {setting}" for setting in _PROXY_SETTINGS]
    lines.append(f"        proxy_pass http://{_upstream_name(key, route)};")
    return [*lines, "    }"]


def _upstream_name(key: EnvironmentKey, route: RouteTarget) -> str:
    digest = hashlib.sha256(f"{key.slug}\n{route.host}\n{route.path}".encode()).hexdigest()
    return f"railyard_{key.slug}_{digest[:12]}"


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _regex_escape(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "/" else "\\" + ch for ch in text)
