"""Bitbucket Cloud: ``X-Event-Key`` names the event; one push may carry several ref changes.

A ``repo:push`` body lists ``push.changes``, each with ``old``/``new`` ref
states (``null`` when the ref was created or deleted) of type ``branch`` or
``tag``. An event describes one ref, so the change to the tracked branch is
chosen when there is one, else the first change. Pull request events carry
12-character abbreviated commit hashes; they are passed on as given.
"""

from __future__ import annotations

from webhook.events import (
    BRANCH_PREFIX,
    TAG_PREFIX,
    ZERO_SHA,
    Delivery,
    PullRequestAction,
    Repository,
    WebhookEvent,
)
from webhook.payload import Payload, unique_urls

ACTIONS: dict[str, PullRequestAction] = {
    "pullrequest:created": "opened",
    "pullrequest:updated": "synchronize",
    "pullrequest:fulfilled": "closed",
    "pullrequest:rejected": "closed",
}
REF_PREFIXES = {"branch": BRANCH_PREFIX, "tag": TAG_PREFIX, "annotated_tag": TAG_PREFIX}


def normalise_bitbucket(delivery: Delivery, payload: Payload, tracked_branch: str) -> WebhookEvent:
    repository = bitbucket_repository(payload.section("repository"))
    sender = payload.first_text(
        ("actor", "nickname"), ("actor", "username"), ("actor", "display_name")
    )
    if delivery.event_name == "repo:push":
        change = _chosen_change(list(payload.sections("push", "changes")), tracked_branch)
        if change is None:
            return delivery.other(repository=repository, sender=sender)
        old, new = change.section("old"), change.section("new")
        state = new if change.has("new") else old
        prefix = REF_PREFIXES.get(state.text("type"))
        if prefix is None:
            return delivery.other(repository=repository, sender=sender)
        return delivery.ref_update(
            ref=prefix + state.require_text("name"),
            before=old.text("target", "hash") or ZERO_SHA,
            after=new.text("target", "hash") or ZERO_SHA,
            forced=change.flag("forced"),
            created=change.flag("created") or not change.has("old"),
            deleted=change.flag("closed") or not change.has("new"),
            repository=repository,
            sender=sender,
        )
    if delivery.event_name.startswith("pullrequest:"):
        pull = payload.section("pullrequest")
        return delivery.pull_request(
            action=ACTIONS.get(delivery.event_name, "other"),
            provider_action=delivery.event_name,
            number=pull.require_integer("id"),
            head_sha=pull.require_text("source", "commit", "hash"),
            head_ref=pull.text("source", "branch", "name"),
            base_ref=pull.text("destination", "branch", "name"),
            merged=delivery.event_name == "pullrequest:fulfilled" or pull.text("state") == "MERGED",
            from_fork=_repository_key(pull.section("source", "repository"))
            != _repository_key(pull.section("destination", "repository")),
            title=pull.text("title"),
            repository=repository,
            sender=sender,
        )
    return delivery.other(repository=repository, sender=sender)


def _chosen_change(changes: list[Payload], tracked_branch: str) -> Payload | None:
    for change in changes:
        for side in ("new", "old"):
            state = change.section(side)
            if state.text("type") == "branch" and state.text("name") == tracked_branch:
                return change
    return changes[0] if changes else None


def _repository_key(repository: Payload) -> str:
    return repository.first_text(("uuid",), ("full_name",))


def bitbucket_repository(repository: Payload) -> Repository:
    clone_links = [link.text("href") for link in repository.sections("links", "clone")]
    return Repository(
        full_name=repository.text("full_name"),
        urls=unique_urls(repository.text("links", "html", "href"), *clone_links),
    )
