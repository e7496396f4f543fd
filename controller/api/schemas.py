"""The API's request and response bodies.

Responses are built field by field from rows (``from_row``), never by dumping a
row, so a column added to a model (say, another encrypted secret) cannot leak
into a response by accident. ``webhook_secret`` appears only in the two bodies
that show a new secret once.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, field_validator

from controller.errors import SourceError
from controller.source.routing import is_working_tree, working_tree_path
from controller.store.models import App, Deployment, DeploymentEvent, Environment, WebhookDelivery

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SCHEMES = ("file://", "git://", "http://", "https://", "ssh://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")
_URL_AUTHORITY = re.compile(r"^[a-z+]+://(?P<userinfo>[^@/]*@)?")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")


def check_app_name(name: str) -> str:
    if not DNS_LABEL.fullmatch(name):
        raise ValueError(
            "must be a DNS label: 1-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def check_repo_url(url: str) -> str:
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError("must be a non-empty URL without spaces")
    lowered = url.lower()
    if is_working_tree(url):
        try:
            working_tree_path(url)
        except SourceError as exc:
            raise ValueError(exc.message) from exc
        return url
    if lowered.startswith(("http://", "https://")):
        match = _URL_AUTHORITY.match(lowered)
        if match and match.group("userinfo") and ":" in match.group("userinfo"):
            raise ValueError(
                "must not embed a password: it would be stored and shown in clear text"
            )
    if lowered.startswith(_SCHEMES) or url.startswith("/") or _SCP_LIKE.fullmatch(url):
        return url
    raise ValueError(
        "must be a git URL (file://, /absolute/path, git://, http(s)://, ssh:// or "
        "user@host:path) or a working tree on the server's machine (dir:///absolute/path)"
    )


def check_branch(branch: str) -> str:
    if (
        not _BRANCH.fullmatch(branch)
        or branch.startswith(("-", "/"))
        or branch.endswith(("/", ".", ".lock"))
        or ".." in branch
        or "//" in branch
    ):
        raise ValueError("must be a valid git branch name")
    return branch


def check_manifest_path(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or "\\" in path or ".." in parts:
        raise ValueError("must be a relative path inside the repository")
    return path


class AppCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    repo_url: str
    branch: str = "main"
    manifest_path: str = "paas.yaml"

    _name = field_validator("name")(check_app_name)
    _repo_url = field_validator("repo_url")(check_repo_url)
    _branch = field_validator("branch")(check_branch)
    _manifest_path = field_validator("manifest_path")(check_manifest_path)


class EnvironmentOut(BaseModel):
    id: str
    app_id: str
    name: str
    kind: str
    ref: str
    pr_number: int | None
    current_revision: str | None
    current_deployment_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Environment) -> EnvironmentOut:
        return cls(
            id=row.id,
            app_id=row.app_id,
            name=row.name,
            kind=row.kind,
            ref=row.ref,
            pr_number=row.pr_number,
            current_revision=row.current_revision,
            current_deployment_id=row.current_deployment_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class AppOut(BaseModel):
    id: str
    name: str
    repo_url: str
    branch: str
    manifest_path: str
    last_seen_revision: str | None
    source_error: str | None
    self_heal: bool
    has_credentials: bool
    created_at: datetime
    webhook_url: str
    environments: list[EnvironmentOut]

    @classmethod
    def from_row(cls, row: App, *, webhook_url: str, environments: list[Environment]) -> AppOut:
        return cls.model_validate(_app_fields(row, webhook_url, environments))


class AppCreated(AppOut):
    """The one response that shows the webhook secret (configure it on the Git host now)."""

    webhook_secret: str

    @classmethod
    def from_new_row(
        cls, row: App, *, webhook_url: str, environments: list[Environment], webhook_secret: str
    ) -> AppCreated:
        fields = _app_fields(row, webhook_url, environments)
        return cls.model_validate({**fields, "webhook_secret": webhook_secret})


def _app_fields(row: App, webhook_url: str, environments: list[Environment]) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.name,
        "repo_url": row.repo_url,
        "branch": row.branch,
        "manifest_path": row.manifest_path,
        "last_seen_revision": row.last_seen_revision,
        "source_error": row.source_error,
        "self_heal": row.self_heal,
        "has_credentials": bool(row.credentials_encrypted),
        "created_at": row.created_at,
        "webhook_url": webhook_url,
        "environments": [EnvironmentOut.from_row(env) for env in environments],
    }


class AppUpdate(BaseModel):
    """Fields of an app that can change after it is registered."""

    model_config = ConfigDict(extra="forbid")

    self_heal: bool | None = None
    branch: str | None = None

    _branch = field_validator("branch")(
        lambda value: value if value is None else check_branch(value)
    )


class WebhookSecretRotated(BaseModel):
    """Shows the new secret once; the old one stops working immediately."""

    app_id: str
    webhook_url: str
    webhook_secret: str


class EventOut(BaseModel):
    id: str
    created_at: datetime
    level: str
    reason: str
    message: str

    @classmethod
    def from_row(cls, row: DeploymentEvent) -> EventOut:
        return cls(
            id=row.id,
            created_at=row.created_at,
            level=row.level,
            reason=row.reason,
            message=row.message,
        )


class DeploymentOut(BaseModel):
    id: str
    app_id: str
    environment_id: str
    revision: str | None
    trigger: str
    status: str
    plan_summary: str
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Deployment) -> DeploymentOut:
        return cls.model_validate(_deployment_fields(row))


class DeploymentDetail(DeploymentOut):
    events: list[EventOut]

    @classmethod
    def from_rows(cls, row: Deployment, events: list[DeploymentEvent]) -> DeploymentDetail:
        fields = _deployment_fields(row)
        return cls.model_validate({**fields, "events": [EventOut.from_row(e) for e in events]})


def _deployment_fields(row: Deployment) -> dict[str, object]:
    return {
        "id": row.id,
        "app_id": row.app_id,
        "environment_id": row.environment_id,
        "revision": row.revision,
        "trigger": row.trigger,
        "status": row.status,
        "plan_summary": row.plan_summary,
        "error": row.error,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }


class DeliveryOut(BaseModel):
    id: str
    provider: str
    delivery_id: str
    event: str
    ref: str | None
    revision: str | None
    outcome: str
    received_at: datetime

    @classmethod
    def from_row(cls, row: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=row.id,
            provider=row.provider,
            delivery_id=row.delivery_id,
            event=row.event,
            ref=row.ref,
            revision=row.revision,
            outcome=row.outcome,
            received_at=row.received_at,
        )


class ReconcileQueued(BaseModel):
    status: str = "queued"
    environment_id: str
    reason: str


class Health(BaseModel):
    status: str
    database: str
