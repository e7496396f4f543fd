"""Railyard's own webhook format, for CI jobs and scripts that are not a forge.

The body is a small JSON object whose keys mirror ``WebhookEvent``; the event
type comes from ``X-Railyard-Event`` or the body's ``event`` (default ``push``)::

    {"event": "push", "ref": "refs/heads/main", "after": "<sha>",
     "repository": "https://git.example.com/team/app.git", "sender": "ci"}
    {"event": "push", "branch": "main", "after": "<sha>"}
    {"event": "pull_request", "action": "opened", "number": 7, "head_sha": "<sha>",
     "head_ref": "feature", "base_ref": "main", "title": "..."}
    {"event": "ping"}

``repository`` may also be ``{"full_name": ..., "url": ..., "urls": [...]}``.
"""

from __future__ import annotations

from dataclasses import replace

from webhook.events import BRANCH_PREFIX, PULL_REQUEST_ACTIONS, Delivery, Repository, WebhookEvent
from webhook.payload import Payload, unique_urls


def normalise_generic(delivery: Delivery, payload: Payload, tracked_branch: str) -> WebhookEvent:
    if not delivery.event_name:
        delivery = replace(delivery, event_name=payload.text("event") or "push")
    repository = generic_repository(payload)
    sender = payload.text("sender")
    if delivery.event_name == "ping":
        return delivery.ping(repository=repository, sender=sender)
    if delivery.event_name == "push":
        branch = payload.text("branch")
        ref = payload.text("ref") or (BRANCH_PREFIX + branch if branch else "")
        if not ref:
            ref = payload.require_text("ref")
        return delivery.ref_update(
            ref=ref,
            before=payload.text("before"),
            after=payload.require_text("after"),
            forced=payload.flag("forced"),
            repository=repository,
            sender=sender,
        )
    if delivery.event_name == "pull_request":
        provider_action = payload.require_text("action")
        action = next((known for known in PULL_REQUEST_ACTIONS if known == provider_action), None)
        return delivery.pull_request(
            action=action or "other",
            provider_action=provider_action,
            number=payload.require_integer("number"),
            head_sha=payload.require_text("head_sha"),
            head_ref=payload.text("head_ref"),
            base_ref=payload.text("base_ref"),
            merged=payload.flag("merged"),
            from_fork=payload.flag("from_fork"),
            title=payload.text("title"),
            repository=repository,
            sender=sender,
        )
    return delivery.other(repository=repository, sender=sender)


def generic_repository(payload: Payload) -> Repository:
    if payload.text("repository"):
        return Repository(urls=(payload.text("repository"),))
    repository = payload.section("repository")
    listed = [url for url in (repository.get("urls") or []) if isinstance(url, str)]
    return Repository(
        full_name=repository.text("full_name"),
        urls=unique_urls(repository.text("url"), *listed),
    )
