"""GitHub: ``X-GitHub-Event`` names the event, the body is documented by octokit/webhooks.

Branch and tag creation or deletion also arrive as ``create``/``delete``
events, but GitHub always sends a ``push`` (with ``created``/``deleted``) for
the same change, so those two are ``other`` here rather than counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from webhook.events import Delivery, PullRequestAction, Repository, WebhookEvent
from webhook.payload import Payload, unique_urls

ACTIONS: dict[str, PullRequestAction] = {
    "opened": "opened",
    "synchronize": "synchronize",
    "reopened": "reopened",
    "closed": "closed",
}


def normalise_github(delivery: Delivery, payload: Payload, tracked_branch: str) -> WebhookEvent:
    repository = github_repository(payload.section("repository"))
    sender = payload.text("sender", "login")
    if delivery.event_name == "ping":
        return delivery.ping(repository=repository, sender=sender)
    if delivery.event_name == "push":
        return delivery.ref_update(
            ref=payload.require_text("ref"),
            before=payload.text("before"),
            after=payload.require_text("after"),
            forced=payload.flag("forced"),
            created=payload.flag("created") if payload.has("created") else None,
            deleted=payload.flag("deleted") if payload.has("deleted") else None,
            repository=repository,
            sender=sender,
        )
    if delivery.event_name == "pull_request":
        return github_style_pull_request(
            delivery, payload, repository, sender, ACTIONS, github_from_fork
        )
    return delivery.other(repository=repository, sender=sender)


def github_style_pull_request(
    delivery: Delivery,
    payload: Payload,
    repository: Repository,
    sender: str,
    actions: Mapping[str, PullRequestAction],
    from_fork: Callable[[Payload], bool],
) -> WebhookEvent:
    """A ``pull_request`` body as GitHub shapes it (Gitea and Forgejo copied the shape)."""
    pull = payload.section("pull_request")
    provider_action = payload.require_text("action")
    number = payload.integer("number")
    return delivery.pull_request(
        action=actions.get(provider_action, "other"),
        provider_action=provider_action,
        number=number if number is not None else pull.require_integer("number"),
        head_sha=pull.require_text("head", "sha"),
        head_ref=pull.text("head", "ref"),
        base_ref=pull.text("base", "ref"),
        merged=pull.flag("merged"),
        from_fork=from_fork(pull),
        title=pull.text("title"),
        repository=repository,
        sender=sender,
    )


def github_repository(repository: Payload) -> Repository:
    return Repository(
        full_name=repository.text("full_name"),
        urls=unique_urls(
            repository.text("clone_url"),
            repository.text("ssh_url"),
            repository.text("html_url"),
            repository.text("git_url"),
        ),
    )


def github_from_fork(pull: Payload) -> bool:
    """Head repository differs from base; a deleted fork (head.repo null) counts as a fork."""
    head, base = pull.section("head", "repo"), pull.section("base", "repo")
    if not pull.has("head", "repo"):
        return True
    head_id, base_id = head.integer("id"), base.integer("id")
    if head_id is not None and base_id is not None:
        return head_id != base_id
    return head.text("full_name") != base.text("full_name")
