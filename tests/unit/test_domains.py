"""Domains: a tenant routes hosts only under the base domain or domains it owns."""

from __future__ import annotations

import httpx
import pytest

from controller.api.app import create_app
from controller.domain_routes import make_domain_router
from controller.policy import host_issues
from controller.settings import Settings
from controller.state import DesiredEnvironment, DesiredService, EnvironmentKey, Route
from controller.store.db import Database
from tests.unit.test_api import login, settings

__all__ = ["settings"]  # the API tests' fixtures


def routed(*hosts: str) -> DesiredEnvironment:
    service = DesiredService(
        name="web", image="x", port=80, routes=tuple(Route(host) for host in hosts)
    )
    return DesiredEnvironment(EnvironmentKey("acme", "shop", "production"), "r", (service,))


@pytest.mark.parametrize(
    ("host", "owned", "allowed"),
    [
        ("shop.localhost", [], True),
        ("localhost", [], True),
        ("a.b.localhost", [], True),
        ("shop.example.com", [], False),
        ("shop.example.com", ["example.com"], True),
        ("example.com", ["example.com"], True),
        ("badexample.com", ["example.com"], False),
        ("example.com.evil.net", ["example.com"], False),
        ("shoplocalhost", [], False),
    ],
)
def test_hosts_must_be_under_an_allowed_domain(host: str, owned: list[str], allowed: bool) -> None:
    issues = host_issues(routed(host), "localhost", owned, filename="paas.yaml")
    assert (not issues) == allowed
    if issues:
        assert issues[0].path == "services.web.routes[0].host"
        assert "railyard domains add" in issues[0].message


async def test_domains_are_claimed_once_and_scoped_to_their_tenant(
    settings: Settings, db: Database
) -> None:
    acme, other = await login(db, settings, "acme"), await login(db, settings, "other")
    transport = httpx.ASGITransport(
        app=create_app(settings, database=db, extra_routers=[make_domain_router()])
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        added = await http.post("/api/v1/domains", json={"name": "Example.COM."}, headers=acme)
        assert (added.status_code, added.json()["name"]) == (201, "example.com")
        taken = await http.post("/api/v1/domains", json={"name": "example.com"}, headers=other)
        assert taken.status_code == 409
        bad = await http.post("/api/v1/domains", json={"name": "not a domain"}, headers=acme)
        assert bad.status_code == 422
        mine = await http.get("/api/v1/domains", headers=acme)
        assert [row["name"] for row in mine.json()] == ["example.com"]
        assert (await http.get("/api/v1/domains", headers=other)).json() == []
        assert (await http.delete("/api/v1/domains/example.com", headers=other)).status_code == 404
        assert (await http.delete("/api/v1/domains/example.com", headers=acme)).status_code == 204
