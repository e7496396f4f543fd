"""What a verified, normalised delivery means for one app: queue it, or why not.

Pure: (app, event) -> Decision. The outcome string is both recorded and
returned to the forge, so a user reading either sees why a push did or did
not deploy:

    queued                          push to the tracked branch (including its creation),
                                    or a pull request opened/synchronize/reopened/closed
    ignored: ping                   the forge testing the hook
    ignored: unsupported event X    create, delete, issues, ... (X is the provider's name)
    ignored: repository mismatch    the payload names another repository than the app's
    ignored: tag push               tags never deploy
    ignored: other branch           a push to a branch the app does not track
    ignored: branch deleted         the tracked branch was deleted: nothing to deploy
    ignored: pull request X         a pull request action that changes no code (labeled, edited)

Pull requests are queued whatever their base branch and whether or not they
come from a fork: the consumer of the queue owns the preview policy (fork
approval, which bases get previews) and has ``event.base_ref`` and
``event.from_fork`` to apply it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from webhook.backend import WebhookApp
from webhook.events import WebhookEvent

QUEUED = "queued"
DUPLICATE = "duplicate"
IGNORED_PING = "ignored: ping"
IGNORED_REPOSITORY = "ignored: repository mismatch"
IGNORED_TAG = "ignored: tag push"
IGNORED_OTHER_BRANCH = "ignored: other branch"
IGNORED_BRANCH_DELETED = "ignored: branch deleted"

_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]{2,}):(?P<path>.+)$")


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str
    enqueue: bool
    status_code: int


def decide(app: WebhookApp, event: WebhookEvent) -> Decision:
    if event.kind == "ping":
        return _ignored(IGNORED_PING)
    if event.kind == "other":
        return _ignored(f"ignored: unsupported event {event.event_name or '(none)'}")
    if not repository_matches(app.repo_url, event.repository.urls):
        return _ignored(IGNORED_REPOSITORY)
    if event.kind == "tag":
        return _ignored(IGNORED_TAG)
    if event.kind == "pull_request":
        if event.action == "other":
            return _ignored(f"ignored: pull request {event.provider_action or 'action'}")
        return Decision(QUEUED, enqueue=True, status_code=202)
    if event.branch != app.branch:
        return _ignored(IGNORED_OTHER_BRANCH)
    if event.deleted:
        return _ignored(IGNORED_BRANCH_DELETED)
    return Decision(QUEUED, enqueue=True, status_code=202)


def _ignored(outcome: str) -> Decision:
    return Decision(outcome, enqueue=False, status_code=200)


def repository_matches(app_repo_url: str, payload_urls: tuple[str, ...]) -> bool:
    """Does any URL the payload gives name the app's repository?

    A local app repository (a path or file:// URL) cannot be named by a forge,
    and a payload without URLs cannot be checked: both match.
    """
    if is_local_repository(app_repo_url) or not payload_urls:
        return True
    wanted = comparable_repository_url(app_repo_url)
    return any(comparable_repository_url(url) == wanted for url in payload_urls)


def is_local_repository(url: str) -> bool:
    url = url.strip()
    if url.lower().startswith("file://"):
        return True
    return "://" not in url and _SCP_LIKE.match(url) is None


def comparable_repository_url(url: str) -> str:
    """``host/owner/repo`` in lower case: scheme, credentials, port, ``.git`` and slashes dropped.

    So ``https://user:token@GitHub.com/Owner/Repo.git/``, ``git@github.com:owner/repo``
    and ``ssh://git@github.com:22/owner/repo`` all compare equal.
    """
    url = url.strip()
    if "://" in url:
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
    elif (scp := _SCP_LIKE.match(url)) is not None:
        host, path = scp["host"], scp["path"]
    else:
        host, path = "", url
    path = path.strip("/").removesuffix(".git").rstrip("/")
    return f"{host}/{path}".lower()
