"""Rendering a manifest for production and for pull-request previews."""

from __future__ import annotations

import pytest

from controller.errors import ManifestError
from controller.spec import (
    RenderContext,
    build_sources,
    image_for,
    parse_manifest,
    render_environment,
)
from controller.state import (
    BuildSource,
    DesiredEnvironment,
    DesiredService,
    EnvironmentKey,
    HealthCheck,
    Resources,
    Route,
)

MANIFEST = """\
version: 1
services:
  web:
    build:
      context: web
      args: {MODE: prod}
      target: runtime
    port: 8080
    replicas: 2
    env:
      API_URL: ${{ services.api.url }}
      API_HOST: ${{ services.api.host }}
      PR: "${{ railyard.pr }}"
      ENVIRONMENT: ${{ railyard.environment }}
      REVISION: ${{ railyard.revision }}
      APP: ${{ railyard.app }}
      BRANCH: ${{ railyard.branch }}
      MODE: production
    healthcheck:
      path: /healthz
      interval: 1s
      timeout: 3s
      retries: 5
      start_period: 10s
    resources: {memory: 256Mi, cpus: 0.5, pids: 128}
    routes:
      - host: shop.example.com
    depends_on: [api]
    deploy: {drain_seconds: 7}
  api:
    image: ghcr.io/acme/api:1.4
    port: 9000
    command: serve --port 9000
    entrypoint: [/bin/api]
    env:
      DATABASE_URL: ${{ secrets.DATABASE_URL }}
      STRIPE_KEY: ${{ secrets.STRIPE_KEY }}
      SELF: ${{ services.api.internal_url }}
    routes:
      - host: shop.example.com
        path: /api
        strip_prefix: true
      - host: api.example.com
    release: ./migrate --yes
    volumes: [uploads:/srv/uploads]
    depends_on: [db]
    deploy: {strategy: recreate}
  db:
    image: postgres:16
    port: 5432
    volumes: [pgdata:/var/lib/postgresql/data]
  worker:
    image: ghcr.io/acme/worker:1.4
    env:
      STRIPE_KEY: ${{ secrets.STRIPE_KEY }}
previews:
  host: "{service}-pr-{pr}.{app}.{base_domain}"
  services: [web, api, db]
  secrets: [STRIPE_KEY]
  env:
    DATABASE_URL: postgres://db:5432/preview
    MODE: preview
"""

SECRETS = {"DATABASE_URL": "postgres://prod-db/main", "STRIPE_KEY": "sk_live_do_not_leak"}


def render(
    env: str = "production",
    *,
    secrets: dict[str, str] = SECRETS,
    branch: str | None = None,
    pr_number: int | None = None,
    url_scheme: str = "http",
) -> DesiredEnvironment:
    manifest = parse_manifest(MANIFEST)
    context = RenderContext(
        key=EnvironmentKey("acme", "shop", env),
        revision="abc123",
        base_domain="preview.example.net",
        build_ids={"web": "tree-1"},
        secrets=secrets,
        branch=branch,
        pr_number=pr_number,
        url_scheme=url_scheme,
    )
    return render_environment(manifest, context)


def service(desired: DesiredEnvironment, name: str) -> DesiredService:
    found = desired.service(name)
    assert found is not None, name
    return found


def env_of(desired: DesiredEnvironment, name: str) -> dict[str, str]:
    return dict(service(desired, name).env)


def test_production_runs_every_service_with_routes_as_written() -> None:
    desired = render()
    assert [s.name for s in desired.services] == ["api", "db", "web", "worker"]
    web = service(desired, "web")
    api = service(desired, "api")
    assert web.routes == (Route("shop.example.com"),)
    assert api.routes == (
        Route("shop.example.com", "/api", strip_prefix=True),
        Route("api.example.com"),
    )


def test_production_fills_in_secrets_and_facts() -> None:
    desired = render()
    web = env_of(desired, "web")
    api = env_of(desired, "api")
    assert api["DATABASE_URL"] == "postgres://prod-db/main"
    assert api["SELF"] == "http://api:9000"
    assert web["API_URL"] == "http://shop.example.com/api"
    assert web["API_HOST"] == "shop.example.com"
    assert (web["PR"], web["ENVIRONMENT"], web["REVISION"], web["APP"], web["BRANCH"]) == (
        "",
        "production",
        "abc123",
        "shop",
        "",
    )


def test_every_field_reaches_the_desired_service() -> None:
    desired = render()
    web = service(desired, "web")
    api = service(desired, "api")
    assert web.build == BuildSource("web", "Dockerfile", (("MODE", "prod"),), "runtime")
    assert web.image == image_for(render_context(), "web", web.build)
    assert web.healthcheck == HealthCheck("/healthz", 8080, 1.0, 3.0, 5, 10.0)
    assert web.resources == Resources(256 * 2**20, 0.5, 128)
    assert (web.replicas, web.drain_seconds, web.strategy, web.depends_on) == (
        2,
        7,
        "rolling",
        ("api",),
    )
    assert api.image == "ghcr.io/acme/api:1.4" and api.build is None
    assert api.command == ("serve", "--port", "9000")
    assert api.entrypoint == ("/bin/api",)
    assert api.release == ("./migrate", "--yes")
    assert api.volumes == (("uploads", "/srv/uploads"),)
    assert (api.strategy, api.drain_seconds) == ("recreate", 2.0)
    assert api.healthcheck == HealthCheck(port=9000)


def render_context(revision: str = "abc123", tree: str = "tree-1") -> RenderContext:
    return RenderContext(
        key=EnvironmentKey("acme", "shop", "production"),
        revision=revision,
        build_ids={"web": tree},
        secrets=SECRETS,
    )


def test_images_are_named_by_build_content_not_by_revision() -> None:
    build = BuildSource("web")
    first = image_for(render_context(), "web", build)
    later = image_for(render_context(revision="def456"), "web", build)
    changed = image_for(render_context(revision="def456", tree="tree-2"), "web", build)
    assert first == later != changed
    assert first.startswith("railyard/acme-shop-web:")


def test_build_sources_lists_built_services_only() -> None:
    sources = build_sources(parse_manifest(MANIFEST))
    assert sources == {"web": BuildSource("web", "Dockerfile", (("MODE", "prod"),), "runtime")}


def test_a_preview_runs_the_subset_on_templated_hosts() -> None:
    desired = render("pr-12")
    assert [s.name for s in desired.services] == ["api", "db", "web"]
    web = service(desired, "web")
    api = service(desired, "api")
    assert web.routes == (Route("web-pr-12.shop.preview.example.net"),)
    assert api.routes == (
        Route("api-pr-12.shop.preview.example.net", "/api", strip_prefix=True),
        Route("api-pr-12.shop.preview.example.net", "/"),
    )


def test_a_preview_lays_its_env_over_each_service() -> None:
    desired = render("pr-12", branch="feature/New_Checkout")
    web = env_of(desired, "web")
    api = env_of(desired, "api")
    assert web["MODE"] == "preview"
    assert web["PR"] == "12" and web["ENVIRONMENT"] == "pr-12"
    assert web["BRANCH"] == "feature/New_Checkout"
    assert web["API_URL"] == "http://api-pr-12.shop.preview.example.net/api"
    assert api["DATABASE_URL"] == "postgres://db:5432/preview"
    assert api["STRIPE_KEY"] == "sk_live_do_not_leak"


def test_pr_number_in_the_context_wins_over_the_environment_name() -> None:
    desired = render("preview-x", pr_number=7)
    assert service(desired, "web").routes[0].host == "web-pr-7.shop.preview.example.net"


def test_the_branch_slug_placeholder() -> None:
    text = MANIFEST.replace(
        '"{service}-pr-{pr}.{app}.{base_domain}"', '"{service}-{branch_slug}.{base_domain}"'
    )
    manifest = parse_manifest(text)
    context = RenderContext(
        EnvironmentKey("acme", "shop", "pr-3"),
        "abc",
        base_domain="x.io",
        secrets=SECRETS,
        branch="Fix/Login_Page",
    )
    desired = render_environment(manifest, context)
    assert service(desired, "web").routes[0].host == "web-fix-login-page.x.io"
    with pytest.raises(ManifestError, match="branch_slug"):
        render_environment(
            manifest, RenderContext(EnvironmentKey("acme", "shop", "pr-3"), "abc", secrets=SECRETS)
        )


def test_a_missing_secret_names_the_secret_and_where_it_is_used() -> None:
    with pytest.raises(ManifestError) as caught:
        render(secrets={"STRIPE_KEY": "sk_live_do_not_leak"})
    (issue,) = caught.value.issues
    assert issue.path == "services.api.env.DATABASE_URL"
    assert '"DATABASE_URL" is not set' in issue.message
    assert (issue.line, issue.column) == (36, 21)


def test_secret_values_never_appear_in_errors() -> None:
    with pytest.raises(ManifestError) as caught:
        render(secrets={"STRIPE_KEY": "sk_live_do_not_leak"})
    error = caught.value
    assert "sk_live_do_not_leak" not in str(error)
    assert "sk_live_do_not_leak" not in repr(error.to_dict())
    assert "sk_live_do_not_leak" not in repr(render_context())


def test_every_missing_secret_is_reported_at_once() -> None:
    with pytest.raises(ManifestError) as caught:
        render(secrets={})
    paths = sorted(issue.path for issue in caught.value.issues)
    assert paths == [
        "services.api.env.DATABASE_URL",
        "services.api.env.STRIPE_KEY",
        "services.worker.env.STRIPE_KEY",
    ]


def test_previews_do_not_need_production_only_secrets() -> None:
    desired = render("pr-4", secrets={"STRIPE_KEY": "sk_test"})
    assert env_of(desired, "api")["DATABASE_URL"] == "postgres://db:5432/preview"


def test_disabled_previews_cannot_be_rendered() -> None:
    manifest = parse_manifest("version: 1\nservices:\n  web: {image: nginx}\n")
    with pytest.raises(ManifestError, match="previews are disabled"):
        render_environment(manifest, RenderContext(EnvironmentKey("a", "b", "pr-1"), "abc"))


def test_previews_default_to_every_service_on_the_default_host() -> None:
    manifest = parse_manifest(
        "version: 1\nservices:\n  web: {image: nginx, port: 80, routes: [{host: a.io}]}\n"
        "  db: {image: postgres}\npreviews: {}\n"
    )
    desired = render_environment(
        manifest, RenderContext(EnvironmentKey("t", "blog", "pr-9"), "abc", base_domain="dev.io")
    )
    assert [s.name for s in desired.services] == ["db", "web"]
    assert service(desired, "web").routes == (Route("web-pr-9.blog.dev.io"),)


def test_a_template_that_makes_a_bad_host_for_this_app_is_an_error() -> None:
    manifest = parse_manifest(
        "version: 1\n"
        "services:\n"
        "  web: {image: nginx, port: 80, routes: [{host: a.io}]}\n"
        "previews: {}\n"
    )
    with pytest.raises(ManifestError, match="not a valid host name"):
        render_environment(manifest, RenderContext(EnvironmentKey("t", "Bad_App", "pr-9"), "abc"))


def test_the_url_scheme_is_configurable() -> None:
    desired = render(url_scheme="https")
    assert env_of(desired, "web")["API_URL"] == "https://shop.example.com/api"


def test_a_compose_manifest_must_be_loaded_before_rendering() -> None:
    manifest = parse_manifest("version: 1\ncompose: compose.yaml\n")
    with pytest.raises(ManifestError, match="load_compose"):
        render_environment(manifest, render_context())


def test_rendering_is_deterministic() -> None:
    assert render() == render()
    assert [s.spec_hash for s in render().services] == [s.spec_hash for s in render().services]


def test_services_without_capabilities_keep_their_spec_hash() -> None:
    # Computed before DesiredService had ``capabilities``: if these change, upgrading
    # Railyard would replace every running container of every app.
    assert {s.name: s.spec_hash for s in render().services} == {
        "api": "78141a6c31b156e9",
        "db": "49be7af5386b1359",
        "web": "16f832073d761eec",
        "worker": "9a41969a9901dcb4",
    }
    assert DesiredService(name="web", image="nginx:1.27").spec_hash == "92b9ea95c1eab3bd"


def capable(capabilities: str, env: str = "production") -> DesiredService:
    manifest = parse_manifest(
        "version: 1\nservices:\n"
        f"  web: {{image: nginx, port: 80, capabilities: {capabilities}}}\npreviews: {{}}\n"
    )
    context = RenderContext(key=EnvironmentKey("acme", "shop", env), revision="abc123")
    return service(render_environment(manifest, context), "web")


def test_capabilities_are_rendered_in_production_and_previews() -> None:
    assert capable("[net_bind_service, CAP_CHOWN]").capabilities == ("CHOWN", "NET_BIND_SERVICE")
    assert capable("[CHOWN]", "pr-4").capabilities == ("CHOWN",)
    assert capable("[]").capabilities == ()


def test_asking_for_capabilities_replaces_the_containers_however_they_are_written() -> None:
    plain = capable("[]")
    assert capable("[CHOWN]").spec_hash != plain.spec_hash
    assert capable("[CHOWN, KILL]").spec_hash != capable("[CHOWN]").spec_hash
    assert capable("[kill, cap_chown, CHOWN]").spec_hash == capable("[CHOWN, KILL]").spec_hash
