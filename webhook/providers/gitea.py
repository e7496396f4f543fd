"""Gitea and Forgejo: one body format (Forgejo kept Gitea's), GitHub-like but not equal.

Differences from GitHub that matter here: new commits on a pull request are
action ``synchronized``; push bodies carry no ``created``/``deleted``/``forced``
flags (the zero SHA tells creation and deletion); a deleted branch or tag
arrives only as a ``delete`` event (``ref`` is the bare name, ``ref_type``
says which), and a created tag as a ``create`` event. A created branch also
arrives as a ``push``, so ``create`` for a branch is ``other``.
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
from webhook.providers.github import github_style_pull_request

ACTIONS: dict[str, PullRequestAction] = {
    "opened": "opened",
    "synchronized": "synchronize",
    "synchronize": "synchronize",
    "reopened": "reopened",
    "closed": "closed",
}


def normalise_gitea(delivery: Delivery, payload: Payload, tracked_branch: str) -> WebhookEvent:
    repository = gitea_repository(payload.section("repository"))
    sender = payload.first_text(("sender", "login"), ("sender", "username"))
    event = delivery.event_name
    if event == "push":
        return delivery.ref_update(
            ref=payload.require_text("ref"),
            before=payload.text("before"),
            after=payload.require_text("after"),
            repository=repository,
            sender=sender,
        )
    if event in ("create", "delete"):
        return _ref_event(delivery, payload, repository, sender)
    if event == "pull_request":
        return github_style_pull_request(
            delivery, payload, repository, sender, ACTIONS, gitea_from_fork
        )
    return delivery.other(repository=repository, sender=sender)


def _ref_event(
    delivery: Delivery, payload: Payload, repository: Repository, sender: str
) -> WebhookEvent:
    name, ref_type = payload.require_text("ref"), payload.text("ref_type")
    deleted = delivery.event_name == "delete"
    if ref_type == "tag":
        ref = name if name.startswith(TAG_PREFIX) else TAG_PREFIX + name
    elif ref_type == "branch" and deleted:
        ref = name if name.startswith(BRANCH_PREFIX) else BRANCH_PREFIX + name
    else:
        return delivery.other(repository=repository, sender=sender)
    sha = payload.text("sha")
    return delivery.ref_update(
        ref=ref,
        before=sha if deleted else ZERO_SHA,
        after=ZERO_SHA if deleted else sha,
        created=not deleted,
        deleted=deleted,
        repository=repository,
        sender=sender,
    )


def gitea_repository(repository: Payload) -> Repository:
    return Repository(
        full_name=repository.text("full_name"),
        urls=unique_urls(
            repository.text("clone_url"),
            repository.text("ssh_url"),
            repository.text("html_url"),
        ),
    )


def gitea_from_fork(pull: Payload) -> bool:
    """Compare repository ids, else full names; with neither given, assume the same repo."""
    head_id, base_id = pull.integer("head", "repo_id"), pull.integer("base", "repo_id")
    if head_id is not None and base_id is not None:
        return head_id != base_id
    head_name = pull.text("head", "repo", "full_name")
    base_name = pull.text("base", "repo", "full_name")
    return bool(head_name and base_name) and head_name != base_name
