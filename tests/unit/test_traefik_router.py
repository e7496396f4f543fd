"""TraefikRouter: the YAML it writes is valid file-provider config, and reads back exactly.

The schema is SchemaStore's Traefik v3 file-provider schema (JSON Schema draft-07),
read from shared/ext.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from controller.errors import ConflictError, ValidationError
from controller.router.traefik import TraefikRouter
from controller.state import EnvironmentKey, RouteTarget
from tests.support import shared_ext

KEY = EnvironmentKey("acme", "shop", "production")
OTHER = EnvironmentKey("acme", "shop", "pr-7")

ROUTE_SETS: dict[str, list[RouteTarget]] = {
    "one host": [RouteTarget("shop.example.com", "/", "web", ("127.0.0.1:40001",))],
    "several hosts": [
        RouteTarget("shop.example.com", "/", "web", ("127.0.0.1:40001",)),
        RouteTarget("www.shop.example.com", "/", "web", ("127.0.0.1:40001",)),
        RouteTarget("admin.example.com", "/", "admin", ("127.0.0.1:40009",)),
    ],
    "path prefix": [
        RouteTarget("shop.example.com", "/", "web", ("127.0.0.1:40001",)),
        RouteTarget("shop.example.com", "/api", "api", ("127.0.0.1:40002",)),
    ],
    "strip prefix": [
        RouteTarget("shop.example.com", "/api", "api", ("127.0.0.1:40002",), strip_prefix=True),
    ],
    "zero upstreams": [RouteTarget("shop.example.com", "/", "web", ())],
    "several upstreams": [
        RouteTarget(
            "shop.example.com", "/", "web", ("127.0.0.1:40001", "127.0.0.1:40002", "web-3:8000")
        ),
    ],
    "no routes": [],
}


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    path = shared_ext("traefik", "schemas", "traefik-v3-file-provider.json")
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    return Draft7Validator(schema)


@pytest.fixture
async def router(tmp_path: Path) -> TraefikRouter:
    router = TraefikRouter(tmp_path / "dynamic")
    await router.start()
    return router


def load(router: TraefikRouter, key: EnvironmentKey = KEY) -> dict[str, Any]:
    document = yaml.safe_load((router.directory / f"{key.slug}.yml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.mark.parametrize("routes", ROUTE_SETS.values(), ids=ROUTE_SETS.keys())
async def test_rendered_file_is_valid_traefik_config_and_reads_back(
    router: TraefikRouter, validator: Draft7Validator, routes: list[RouteTarget]
) -> None:
    await router.apply(KEY, routes)

    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(load(router))]
    assert errors == []
    assert await router.observe(KEY) == routes


async def test_routers_match_host_and_path_and_point_at_their_servers(
    router: TraefikRouter,
) -> None:
    await router.apply(KEY, ROUTE_SETS["path prefix"])
    http = load(router)["http"]

    by_rule = {r["rule"]: r for r in http["routers"].values()}
    assert set(by_rule) == {
        "Host(`shop.example.com`)",
        "Host(`shop.example.com`) && PathPrefix(`/api`)",
    }
    api = by_rule["Host(`shop.example.com`) && PathPrefix(`/api`)"]
    assert api["entryPoints"] == ["web"]
    assert "middlewares" not in api
    assert http["services"][api["service"]]["loadBalancer"] == {
        "servers": [{"url": "http://127.0.0.1:40002"}],
        "passHostHeader": True,
    }


async def test_strip_prefix_attaches_a_strip_prefix_middleware(router: TraefikRouter) -> None:
    await router.apply(KEY, ROUTE_SETS["strip prefix"])
    http = load(router)["http"]

    (router_config,) = http["routers"].values()
    (middleware,) = router_config["middlewares"]
    assert http["middlewares"][middleware] == {"stripPrefix": {"prefixes": ["/api"]}}


async def test_every_upstream_becomes_a_server(router: TraefikRouter) -> None:
    await router.apply(KEY, ROUTE_SETS["several upstreams"])
    (service,) = load(router)["http"]["services"].values()

    assert [s["url"] for s in service["loadBalancer"]["servers"]] == [
        "http://127.0.0.1:40001",
        "http://127.0.0.1:40002",
        "http://web-3:8000",
    ]


async def test_route_without_upstreams_points_at_an_empty_weighted_service(
    router: TraefikRouter,
) -> None:
    """Traefik answers an empty weighted service with 503 "no available server"."""
    await router.apply(KEY, ROUTE_SETS["zero upstreams"])
    http = load(router)["http"]

    (router_config,) = http["routers"].values()
    assert http["services"][router_config["service"]] == {"weighted": {"services": []}}


async def test_names_are_unique_across_environments(router: TraefikRouter) -> None:
    routes = ROUTE_SETS["path prefix"]
    await router.apply(KEY, routes)
    await router.apply(
        OTHER,
        [RouteTarget("pr-7.shop.example.com", r.path, r.service, r.upstreams) for r in routes],
    )

    first, second = load(router, KEY)["http"], load(router, OTHER)["http"]
    assert not set(first["routers"]) & set(second["routers"])
    assert not set(first["services"]) & set(second["services"])
    assert len(first["routers"]) == len(routes)


async def test_apply_replaces_the_whole_route_set(router: TraefikRouter) -> None:
    await router.apply(KEY, ROUTE_SETS["several hosts"])
    await router.apply(KEY, ROUTE_SETS["one host"])

    assert await router.observe(KEY) == ROUTE_SETS["one host"]
    assert len(load(router)["http"]["routers"]) == 1


async def test_environments_lists_every_environment_with_a_file(router: TraefikRouter) -> None:
    assert await router.environments() == []
    await router.apply(KEY, ROUTE_SETS["one host"])
    await router.apply(OTHER, [])

    assert await router.environments() == [OTHER, KEY]


async def test_remove_deletes_the_file_and_missing_is_fine(router: TraefikRouter) -> None:
    await router.apply(KEY, ROUTE_SETS["one host"])
    await router.apply(OTHER, ROUTE_SETS["zero upstreams"])

    await router.remove(KEY)
    await router.remove(KEY)

    assert not (router.directory / f"{KEY.slug}.yml").exists()
    assert await router.observe(KEY) == []
    assert await router.environments() == [OTHER]


def signed_header(header: dict[str, Any], text: str) -> str:
    """A header whose digest matches the body, so only its shape is wrong."""
    body = text.split("\n", 1)[1]
    header["digest"] = hashlib.sha256(body.encode()).hexdigest()
    return "# railyard-routes: " + json.dumps(header) + "\n" + body


KEYS = {"tenant": "acme", "app": "shop", "env": "production"}
HAND_EDITS = {
    "header removed": lambda text: text.split("\n", 1)[1],
    "header is not JSON": lambda text: text.replace('{"tenant"', "{tenant", 1),
    "body edited": lambda text: text.replace("127.0.0.1:40001", "127.0.0.1:40099"),
    "truncated": lambda text: text[:25],
    "empty": lambda text: "",
    "routes not a list": lambda text: signed_header({**KEYS, "routes": 3}, text),
    "route missing fields": lambda text: signed_header({**KEYS, "routes": [{"host": 1}]}, text),
    "upstreams not a list": lambda text: signed_header(
        {**KEYS, "routes": [{"host": "a", "path": "/", "service": "w", "upstreams": "x:1"}]}, text
    ),
    "tenant missing": lambda text: signed_header({"app": "shop", "routes": []}, text),
}


@pytest.mark.parametrize("edit", HAND_EDITS.values(), ids=HAND_EDITS.keys())
async def test_hand_edited_file_reads_as_no_routes(router: TraefikRouter, edit: Any) -> None:
    await router.apply(KEY, ROUTE_SETS["one host"])
    path = router.directory / f"{KEY.slug}.yml"
    path.write_text(edit(path.read_text()))

    assert await router.observe(KEY) == []
    assert KEY not in await router.environments()

    await router.apply(KEY, ROUTE_SETS["one host"])
    assert await router.observe(KEY) == ROUTE_SETS["one host"]


async def test_binary_garbage_does_not_crash_observe(router: TraefikRouter) -> None:
    (router.directory / f"{KEY.slug}.yml").write_bytes(b"\xff\xfe\x00garbage")

    assert await router.observe(KEY) == []
    assert await router.environments() == []


async def test_writes_leave_no_temp_files_behind(router: TraefikRouter) -> None:
    for route_set in ROUTE_SETS.values():
        await router.apply(KEY, route_set)

    assert sorted(p.name for p in router.directory.iterdir()) == [f"{KEY.slug}.yml"]


async def test_failed_write_keeps_the_old_file_whole(
    router: TraefikRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    await router.apply(KEY, ROUTE_SETS["one host"])

    def refuse(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        await router.apply(KEY, ROUTE_SETS["several hosts"])

    assert await router.observe(KEY) == ROUTE_SETS["one host"]
    assert sorted(p.name for p in router.directory.iterdir()) == [f"{KEY.slug}.yml"]


@pytest.mark.parametrize(
    "route",
    [
        RouteTarget("Shop Example", "/", "web", ("127.0.0.1:1",)),
        RouteTarget("shop.example.com", "api", "web", ("127.0.0.1:1",)),
        RouteTarget("shop.example.com", "/a`) || Host(`evil.com", "web", ("127.0.0.1:1",)),
        RouteTarget("shop.example.com", "/", "web", ("127.0.0.1",)),
    ],
    ids=["host with space", "relative path", "rule injection", "upstream without port"],
)
async def test_unrenderable_routes_are_refused_before_writing(
    router: TraefikRouter, route: RouteTarget
) -> None:
    with pytest.raises(ValidationError):
        await router.apply(KEY, [route])

    assert list(router.directory.iterdir()) == []


async def test_two_routes_for_one_host_and_path_are_refused(router: TraefikRouter) -> None:
    route = ROUTE_SETS["one host"][0]
    with pytest.raises(ValidationError, match="declared twice"):
        await router.apply(KEY, [route, route])


async def test_a_file_of_another_environment_with_the_same_slug_is_not_overwritten(
    router: TraefikRouter,
) -> None:
    """tenant "a-b"/app "c" and tenant "a"/app "b-c" share the slug "a-b-c-prod"."""
    mine, theirs = EnvironmentKey("a-b", "c", "prod"), EnvironmentKey("a", "b-c", "prod")
    await router.apply(theirs, ROUTE_SETS["one host"])

    with pytest.raises(ConflictError, match="a/b-c/prod"):
        await router.apply(mine, ROUTE_SETS["several hosts"])
    await router.remove(mine)

    assert await router.observe(theirs) == ROUTE_SETS["one host"]
