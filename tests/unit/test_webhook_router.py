"""The webhook endpoint as a forge sees it: signed pushes queue, everything else says why not."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from controller.errors import TemporaryError
from webhook.backend import InMemoryWebhookBackend, WebhookApp
from webhook.decide import comparable_repository_url, decide, repository_matches
from webhook.events import PROVIDERS, Delivery, Provider, Repository, WebhookEvent
from webhook.router import get_webhook_backend, make_webhook_router

SECRET = "router-test-secret"
REPO = "https://git.example.com/team/app.git"
APP = WebhookApp(id="app-1", tenant_id="tenant-1", repo_url=REPO, branch="main", secret=SECRET)
BEFORE, AFTER = "1" * 40, "2" * 40
MIB = 1024 * 1024

EVENT_HEADER: dict[Provider, tuple[str, str]] = {
    "github": ("X-GitHub-Event", "push"),
    "gitlab": ("X-Gitlab-Event", "Push Hook"),
    "gitea": ("X-Gitea-Event", "push"),
    "forgejo": ("X-Forgejo-Event", "push"),
    "bitbucket": ("X-Event-Key", "repo:push"),
    "generic": ("X-Railyard-Event", "push"),
}
DELIVERY_HEADER: dict[Provider, str] = {
    "github": "X-GitHub-Delivery",
    "gitlab": "X-Gitlab-Event-UUID",
    "gitea": "X-Gitea-Delivery",
    "forgejo": "X-Forgejo-Delivery",
    "bitbucket": "X-Request-UUID",
    "generic": "X-Railyard-Delivery",
}


def push_payload(provider: Provider, branch: str = "main", repo: str = REPO) -> dict[str, Any]:
    ref = f"refs/heads/{branch}"
    if provider == "gitlab":
        project = {"path_with_namespace": "team/app", "git_http_url": repo}
        return {
            "object_kind": "push",
            "ref": ref,
            "before": BEFORE,
            "after": AFTER,
            "project": project,
        }
    if provider == "bitbucket":
        change = {
            "old": {"type": "branch", "name": branch, "target": {"hash": BEFORE}},
            "new": {"type": "branch", "name": branch, "target": {"hash": AFTER}},
        }
        links = {"html": {"href": repo.removesuffix(".git")}}
        return {"push": {"changes": [change]}, "repository": {"links": links}}
    if provider == "generic":
        return {"ref": ref, "after": AFTER, "repository": repo}
    return {"ref": ref, "before": BEFORE, "after": AFTER, "repository": {"clone_url": repo}}


def signed_headers(
    provider: Provider, body: bytes, delivery: str, secret: str = SECRET
) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signature = {
        "github": {"X-Hub-Signature-256": f"sha256={digest}"},
        "gitlab": {"X-Gitlab-Token": secret},
        "gitea": {"X-Gitea-Signature": digest},
        "forgejo": {"X-Forgejo-Signature": digest},
        "bitbucket": {"X-Hub-Signature": f"sha256={digest}"},
        "generic": {"X-Railyard-Signature": f"sha256={digest}"},
    }[provider]
    name, value = EVENT_HEADER[provider]
    return signature | {name: value, DELIVERY_HEADER[provider]: delivery}


@pytest.fixture
def backend() -> InMemoryWebhookBackend:
    return InMemoryWebhookBackend([APP])


@pytest.fixture
async def client(backend: InMemoryWebhookBackend) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(make_webhook_router())
    app.state.webhook_backend = backend
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://railyard.test") as http:
        yield http


async def deliver(
    client: httpx.AsyncClient,
    provider: Provider,
    payload: dict[str, Any],
    *,
    delivery: str = "delivery-1",
    event: str | None = None,
    secret: str = SECRET,
    app_id: str = APP.id,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = signed_headers(provider, body, delivery, secret)
    if event is not None:
        headers[EVENT_HEADER[provider][0]] = event
    return await client.post(f"/webhooks/{provider}/{app_id}", content=body, headers=headers)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_signed_push_to_tracked_branch_is_queued(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend, provider: Provider
) -> None:
    response = await deliver(client, provider, push_payload(provider), delivery=f"{provider}-1")

    assert response.status_code == 202
    assert response.json() == {"outcome": "queued", "delivery_id": f"{provider}-1"}
    ((app, event),) = backend.enqueued
    assert app == APP
    assert (event.kind, event.branch, event.after, event.provider) == (
        "push",
        "main",
        AFTER,
        provider,
    )
    assert backend.outcomes() == ["queued"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_wrong_signature_is_401_and_nothing_is_enqueued(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend, provider: Provider
) -> None:
    response = await deliver(client, provider, push_payload(provider), secret="guessed")

    assert response.status_code == 401
    assert response.json() == {"outcome": "rejected: bad signature", "delivery_id": "delivery-1"}
    assert backend.enqueued == []
    (recorded,) = backend.recorded
    assert recorded.outcome == "rejected: bad signature"
    assert recorded.event.delivery_id.startswith("rejected:")  # never claims the real id
    assert SECRET not in repr(backend.recorded) and "guessed" not in repr(backend.recorded)


async def test_rejected_forgery_does_not_block_the_genuine_delivery(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    forged = await deliver(client, "github", push_payload("github"), secret="guessed")
    genuine = await deliver(client, "github", push_payload("github"))

    assert (forged.status_code, genuine.status_code) == (401, 202)
    assert len(backend.enqueued) == 1


async def test_missing_signature_is_401(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    body = json.dumps(push_payload("github")).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}

    response = await client.post(f"/webhooks/github/{APP.id}", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json()["outcome"] == "rejected: missing signature"
    assert backend.enqueued == []


async def test_app_without_secret_rejects_even_an_empty_key_signature(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    backend.add_app(WebhookApp(id="open", tenant_id="t", repo_url=REPO, branch="main", secret=""))

    response = await deliver(client, "gitea", push_payload("gitea"), secret="", app_id="open")

    assert response.status_code == 401
    assert response.json()["outcome"] == "rejected: no webhook secret configured"
    assert backend.enqueued == []


async def test_body_over_one_mebibyte_is_413_by_content_length(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    body = b"{" + b" " * MIB + b"}"
    headers = signed_headers("github", body, "big")

    response = await client.post(f"/webhooks/github/{APP.id}", content=body, headers=headers)

    assert response.status_code == 413
    assert response.json()["outcome"] == "rejected: body too large"
    assert backend.recorded == [] and backend.enqueued == []


class Chunks:
    """A chunked request body that counts how much of it the server pulled."""

    def __init__(self, count: int, size: int = 64 * 1024) -> None:
        self.count, self.size, self.sent = count, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.sent += 1
            yield b" " * self.size


@pytest.mark.parametrize("content_length", [None, "100"], ids=["chunked", "lying-length"])
async def test_streamed_body_over_the_cap_is_413_without_reading_it_all(
    client: httpx.AsyncClient,
    backend: InMemoryWebhookBackend,
    content_length: str | None,
) -> None:
    chunks = Chunks(count=64)  # 4 MiB on offer
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"}
    if content_length is not None:
        headers["Content-Length"] = content_length

    response = await client.post(f"/webhooks/github/{APP.id}", content=chunks, headers=headers)

    assert response.status_code == 413
    assert chunks.sent <= MIB // chunks.size + 1
    assert backend.recorded == []


async def test_body_of_exactly_the_cap_is_read(client: httpx.AsyncClient) -> None:
    payload = push_payload("github")
    padding = MIB - len(json.dumps(payload | {"pad": ""}).encode())
    response = await deliver(client, "github", payload | {"pad": "x" * padding})
    assert response.status_code == 202


async def test_malformed_json_with_valid_signature_is_400(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    body = b'{"ref": "refs/heads/main",'
    headers = signed_headers("github", body, "d-bad")

    response = await client.post(f"/webhooks/github/{APP.id}", content=body, headers=headers)

    assert response.status_code == 400
    assert response.json() == {"outcome": "rejected: malformed JSON", "delivery_id": "d-bad"}
    assert backend.outcomes() == ["rejected: malformed JSON"]
    assert backend.enqueued == []


async def test_push_without_required_fields_is_400(client: httpx.AsyncClient) -> None:
    response = await deliver(client, "github", {"after": AFTER})
    assert response.status_code == 400
    assert response.json()["outcome"] == "rejected: missing field ref"


async def test_unknown_app_is_404(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    response = await deliver(client, "github", push_payload("github"), app_id="no-such-app")
    assert response.status_code == 404
    assert response.json()["outcome"] == "rejected: unknown app"
    assert backend.recorded == []


async def test_unknown_provider_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/webhooks/sourceforge/{APP.id}", content=b"{}")
    assert response.status_code == 404
    assert response.json()["outcome"] == "rejected: unknown provider"


async def test_redelivery_is_a_duplicate_and_enqueued_once(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    first = await deliver(client, "github", push_payload("github"), delivery="same")
    again = await deliver(client, "github", push_payload("github"), delivery="same")

    assert (first.status_code, first.json()["outcome"]) == (202, "queued")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert len(backend.enqueued) == 1


async def test_a_hundred_concurrent_redeliveries_enqueue_once(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    responses = await asyncio.gather(
        *(deliver(client, "gitlab", push_payload("gitlab"), delivery="burst") for _ in range(100))
    )

    outcomes = sorted(response.json()["outcome"] for response in responses)
    assert outcomes == ["duplicate"] * 99 + ["queued"]
    assert len(backend.enqueued) == 1


async def test_push_to_another_branch_is_ignored(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    response = await deliver(client, "gitea", push_payload("gitea", branch="feature"))

    assert (response.status_code, response.json()["outcome"]) == (200, "ignored: other branch")
    assert backend.enqueued == []
    assert backend.outcomes() == ["ignored: other branch"]


async def test_ping_is_ignored(client: httpx.AsyncClient, backend: InMemoryWebhookBackend) -> None:
    ping = {"zen": "Keep it logically awesome.", "hook_id": 1}
    response = await deliver(client, "github", ping, event="ping")

    assert (response.status_code, response.json()["outcome"]) == (200, "ignored: ping")
    assert backend.enqueued == []


async def test_push_from_another_repository_is_ignored(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    payload = push_payload("github", repo="https://git.example.com/other/app.git")
    response = await deliver(client, "github", payload)

    assert response.json()["outcome"] == "ignored: repository mismatch"
    assert backend.enqueued == []


async def test_local_repository_app_skips_the_repository_check(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    backend.add_app(
        WebhookApp(id="local", tenant_id="t", repo_url="/srv/git/app", branch="main", secret=SECRET)
    )
    response = await deliver(client, "generic", push_payload("generic"), app_id="local")
    assert response.json()["outcome"] == "queued"


def github_pull_request(action: str) -> dict[str, Any]:
    return {
        "action": action,
        "number": 7,
        "pull_request": {
            "number": 7,
            "title": "Add a feature",
            "merged": False,
            "head": {"sha": AFTER, "ref": "feature", "repo": {"id": 1}},
            "base": {"sha": BEFORE, "ref": "main", "repo": {"id": 1}},
        },
        "repository": {"clone_url": REPO},
    }


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "closed"])
async def test_pull_request_changes_are_queued_for_previews(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend, action: str
) -> None:
    response = await deliver(client, "github", github_pull_request(action), event="pull_request")

    assert (response.status_code, response.json()["outcome"]) == (202, "queued")
    ((_, event),) = backend.enqueued
    assert (event.kind, event.action, event.number, event.head_sha) == (
        "pull_request",
        action,
        7,
        AFTER,
    )


async def test_pull_request_label_change_is_ignored(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    response = await deliver(client, "github", github_pull_request("labeled"), event="pull_request")
    assert response.json()["outcome"] == "ignored: pull request labeled"
    assert backend.enqueued == []


async def test_form_encoded_github_delivery_is_accepted(
    client: httpx.AsyncClient, backend: InMemoryWebhookBackend
) -> None:
    body = urlencode({"payload": json.dumps(push_payload("github"))}).encode()
    headers = signed_headers("github", body, "form-1")
    headers["Content-Type"] = "application/x-www-form-urlencoded"

    response = await client.post(f"/webhooks/github/{APP.id}", content=body, headers=headers)

    assert response.status_code == 202
    assert len(backend.enqueued) == 1


class BrokerDown(InMemoryWebhookBackend):
    async def enqueue(self, app: WebhookApp, event: WebhookEvent) -> None:
        raise TemporaryError("redis unreachable")


async def test_queue_outage_answers_503_and_the_backend_is_injectable() -> None:
    app = FastAPI()
    app.include_router(make_webhook_router())
    broken = BrokerDown([APP])
    app.dependency_overrides[get_webhook_backend] = lambda: broken
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://railyard.test") as http:
        response = await deliver(http, "github", push_payload("github"))

    assert response.status_code == 503
    assert response.json()["outcome"] == "failed: queue unavailable"


# decide(): the outcome table, without HTTP.


def event(kind: str, **fields: Any) -> WebhookEvent:
    delivery = Delivery("github", "d", kind)
    repository = Repository(urls=(fields.pop("url", REPO),))
    if kind == "push" or kind == "tag":
        prefix = "refs/tags/" if kind == "tag" else "refs/heads/"
        return delivery.ref_update(
            ref=prefix + fields.pop("name", "main"),
            before=BEFORE,
            after=fields.pop("after", AFTER),
            repository=repository,
            sender="dev",
        )
    if kind == "pull_request":
        return delivery.pull_request(
            action=fields.pop("action"),
            provider_action=fields.pop("provider_action", "x"),
            number=1,
            head_sha=AFTER,
            head_ref="f",
            base_ref=fields.pop("base_ref", "main"),
            merged=False,
            from_fork=fields.pop("from_fork", False),
            title="t",
            repository=repository,
            sender="dev",
        )
    return delivery.ping() if kind == "ping" else delivery.other()


@pytest.mark.parametrize(
    ("given", "outcome", "status_code"),
    [
        (event("push"), "queued", 202),
        (event("push", after="0" * 40), "ignored: branch deleted", 200),
        (event("push", name="feature"), "ignored: other branch", 200),
        (
            event("push", url="git@git.example.com:someone/else.git"),
            "ignored: repository mismatch",
            200,
        ),
        (event("tag", name="v1"), "ignored: tag push", 200),
        (event("ping"), "ignored: ping", 200),
        (event("create"), "ignored: unsupported event create", 200),
        (event("pull_request", action="opened"), "queued", 202),
        (event("pull_request", action="closed", base_ref="develop"), "queued", 202),
        (event("pull_request", action="synchronize", from_fork=True), "queued", 202),
        (
            event("pull_request", action="other", provider_action="edited"),
            "ignored: pull request edited",
            200,
        ),
    ],
)
def test_decide(given: WebhookEvent, outcome: str, status_code: int) -> None:
    decision = decide(APP, given)
    assert (decision.outcome, decision.status_code) == (outcome, status_code)
    assert decision.enqueue == (outcome == "queued")


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/team/app.git",
        "https://git.example.com/team/app",
        "https://git.example.com/team/app/",
        "https://user:token@git.example.com/team/app.git",
        "http://GIT.example.com:8443/Team/App.git",
        "git@git.example.com:team/app.git",
        "ssh://git@git.example.com:2222/team/app.git",
        "git://git.example.com/team/app.git",
    ],
)
def test_repository_url_forms_compare_equal(url: str) -> None:
    assert comparable_repository_url(url) == "git.example.com/team/app"


@pytest.mark.parametrize(
    ("app_url", "payload_urls", "matches"),
    [
        (REPO, ("git@git.example.com:team/app.git",), True),
        (REPO, ("https://git.example.com/team/app-fork.git",), False),
        (REPO, ("https://other.example.com/team/app.git",), False),
        (REPO, (), True),
        ("/srv/git/app", ("https://git.example.com/x/y.git",), True),
        ("file:///srv/git/app", ("https://git.example.com/x/y.git",), True),
        ("./app", ("https://git.example.com/x/y.git",), True),
    ],
)
def test_repository_matches(app_url: str, payload_urls: tuple[str, ...], matches: bool) -> None:
    assert repository_matches(app_url, payload_urls) is matches
