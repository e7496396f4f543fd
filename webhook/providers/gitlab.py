"""GitLab: the body's ``object_kind`` says what happened (the header only repeats it).

``X-Gitlab-Event`` is ``Push Hook`` / ``Tag Push Hook`` / ``Merge Request Hook``
for project hooks but ``System Hook`` for instance-wide hooks carrying the same
bodies, so dispatch uses ``object_kind``. Branch creation and deletion are
ordinary pushes with a zero ``before``/``after``.

Merge request actions: ``open``, ``reopen``, ``close``, ``merge`` (closed and
merged), and ``update``, which GitLab also sends for title or label edits;
only an update that carries ``oldrev`` (present only when commits changed)
is a ``synchronize``.
"""

from __future__ import annotations

from webhook.events import Delivery, PullRequestAction, Repository, WebhookEvent
from webhook.payload import Payload, unique_urls

ACTIONS: dict[str, PullRequestAction] = {
    "open": "opened",
    "reopen": "reopened",
    "close": "closed",
    "merge": "closed",
}


def normalise_gitlab(delivery: Delivery, payload: Payload, tracked_branch: str) -> WebhookEvent:
    repository = gitlab_repository(payload)
    kind = payload.text("object_kind") or payload.text("event_name")
    if kind in ("push", "tag_push"):
        return delivery.ref_update(
            ref=payload.require_text("ref"),
            before=payload.text("before"),
            after=payload.first_text(("after",), ("checkout_sha",)),
            repository=repository,
            sender=payload.first_text(("user_username",), ("user_name",)),
        )
    sender = payload.first_text(("user", "username"), ("user", "name"))
    if kind == "merge_request":
        request = payload.section("object_attributes")
        provider_action = request.text("action")
        return delivery.pull_request(
            action=gitlab_action(request),
            provider_action=provider_action,
            number=request.require_integer("iid"),
            head_sha=request.require_text("last_commit", "id"),
            head_ref=request.text("source_branch"),
            base_ref=request.text("target_branch"),
            merged=provider_action == "merge" or request.text("state") == "merged",
            from_fork=request.integer("source_project_id") != request.integer("target_project_id"),
            title=request.text("title"),
            repository=repository,
            sender=sender,
        )
    return delivery.other(repository=repository, sender=sender)


def gitlab_action(request: Payload) -> PullRequestAction:
    provider_action = request.text("action")
    if provider_action == "update":
        return "synchronize" if request.text("oldrev") else "other"
    return ACTIONS.get(provider_action, "other")


def gitlab_repository(payload: Payload) -> Repository:
    project, repository = payload.section("project"), payload.section("repository")
    return Repository(
        full_name=project.text("path_with_namespace"),
        urls=unique_urls(
            project.text("git_http_url"),
            project.text("git_ssh_url"),
            project.text("web_url"),
            repository.text("git_http_url"),
            repository.text("git_ssh_url"),
            repository.text("url"),
            repository.text("homepage"),
        ),
    )
