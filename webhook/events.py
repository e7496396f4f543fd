"""The one shape every forge's webhook is normalised into.

Five forges describe a push or a pull request in five JSON dialects. The rest
of Railyard (outcome decision, records, the queue) only ever sees a
``WebhookEvent``: a frozen value with one flat set of fields, filled by the
provider modules under ``webhook/providers``. Fields that do not apply to an
event's kind keep their empty defaults ("" / False / None).

``Delivery`` carries what every event of one request shares (provider,
delivery id, raw event name) and builds the events, so provider modules only
say what their payload means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

Provider = Literal["github", "gitlab", "gitea", "forgejo", "bitbucket", "generic"]
EventKind = Literal["push", "tag", "pull_request", "ping", "other"]
PullRequestAction = Literal["opened", "synchronize", "reopened", "closed", "other"]

PROVIDERS: tuple[Provider, ...] = get_args(Provider)
PULL_REQUEST_ACTIONS: tuple[PullRequestAction, ...] = get_args(PullRequestAction)

ZERO_SHA = "0" * 40
"""Git's "no commit": the ``before`` of a created ref, the ``after`` of a deleted one."""

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


def parse_provider(name: str) -> Provider | None:
    for provider in PROVIDERS:
        if provider == name:
            return provider
    return None


@dataclass(frozen=True, slots=True)
class Repository:
    """The repository a delivery is about, as the payload names it."""

    full_name: str = ""
    urls: tuple[str, ...] = ()
    """Every clone or web URL the payload gives, in payload order, without duplicates."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    kind: EventKind
    provider: Provider
    delivery_id: str
    event_name: str
    """The provider's own event type (``push``, ``Merge Request Hook``, ``repo:push``)."""
    repository: Repository = field(default_factory=Repository)
    sender: str = ""
    # push and tag
    ref: str = ""
    branch: str = ""
    tag: str = ""
    before: str = ""
    after: str = ""
    forced: bool = False
    created: bool = False
    deleted: bool = False
    # pull request
    action: PullRequestAction = "other"
    provider_action: str = ""
    """As the provider spelled it: ``synchronized``, ``merge``, ``pullrequest:rejected``."""
    number: int | None = None
    head_sha: str = ""
    head_ref: str = ""
    base_ref: str = ""
    merged: bool = False
    from_fork: bool = False
    title: str = ""

    @property
    def revision(self) -> str:
        """The commit this event points at: the new tip of a push or tag, or a PR's head."""
        if self.kind == "pull_request":
            return self.head_sha
        return "" if self.after == ZERO_SHA else self.after

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for records and queue messages (it never holds a secret)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one request's events share, and the constructors provider modules use."""

    provider: Provider
    delivery_id: str
    event_name: str

    def ref_update(
        self,
        *,
        ref: str,
        before: str,
        after: str,
        repository: Repository,
        sender: str,
        forced: bool = False,
        created: bool | None = None,
        deleted: bool | None = None,
    ) -> WebhookEvent:
        """A push to ``ref``: a ``tag`` event under refs/tags/, ``push`` under refs/heads/.

        ``created``/``deleted`` default to what the zero SHA says when the payload
        has no flags of its own. Any other ref (refs/notes/...) is an ``other`` event.
        """
        is_created = before == ZERO_SHA if created is None else created
        is_deleted = after == ZERO_SHA if deleted is None else deleted
        update = {"ref": ref, "before": before, "after": after}
        flags = {"created": is_created, "deleted": is_deleted}
        if ref.startswith(TAG_PREFIX):
            tag = ref.removeprefix(TAG_PREFIX)
            return self._event("tag", repository, sender, tag=tag, **update, **flags)
        if not ref.startswith(BRANCH_PREFIX):
            return self.other(repository=repository, sender=sender)
        branch = ref.removeprefix(BRANCH_PREFIX)
        return self._event(
            "push", repository, sender, branch=branch, forced=forced, **update, **flags
        )

    def pull_request(
        self,
        *,
        action: PullRequestAction,
        provider_action: str,
        number: int,
        head_sha: str,
        head_ref: str,
        base_ref: str,
        merged: bool,
        from_fork: bool,
        title: str,
        repository: Repository,
        sender: str,
    ) -> WebhookEvent:
        return self._event(
            "pull_request",
            repository,
            sender,
            action=action,
            provider_action=provider_action,
            number=number,
            head_sha=head_sha,
            head_ref=head_ref,
            base_ref=base_ref,
            merged=merged,
            from_fork=from_fork,
            title=title,
        )

    def ping(self, *, repository: Repository = Repository(), sender: str = "") -> WebhookEvent:
        return self._event("ping", repository, sender)

    def other(self, *, repository: Repository = Repository(), sender: str = "") -> WebhookEvent:
        return self._event("other", repository, sender)

    def _event(
        self, kind: EventKind, repository: Repository, sender: str, **fields: Any
    ) -> WebhookEvent:
        """An event of this delivery; ``fields`` are those of its kind."""
        return WebhookEvent(
            kind=kind,
            provider=self.provider,
            delivery_id=self.delivery_id,
            event_name=self.event_name,
            repository=repository,
            sender=sender,
            **fields,
        )
