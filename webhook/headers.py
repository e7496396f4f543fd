"""Which request header carries what, per forge: event type and delivery id.

Kept as one table so the differences between forges are visible side by side
(see /work/shared/ext/webhooks/SOURCES.md for where each name comes from).

Delivery ids de-duplicate redeliveries, so only headers that stay the same
when a forge redelivers an event qualify. GitLab's ``X-Gitlab-Webhook-UUID``
names the *webhook*, not the delivery, and is deliberately not used: it would
make every delivery of one hook a duplicate of the first. When no delivery
header is present the id is the SHA-256 of the body, which a redelivery
repeats byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from webhook.events import Provider


@dataclass(frozen=True, slots=True)
class HeaderNames:
    event: tuple[str, ...]
    delivery: tuple[str, ...]


HEADERS: dict[Provider, HeaderNames] = {
    "github": HeaderNames(event=("x-github-event",), delivery=("x-github-delivery",)),
    "gitlab": HeaderNames(
        event=("x-gitlab-event",),
        # Idempotency-Key (GitLab >= 17.4) is documented as stable across retries.
        delivery=("idempotency-key", "x-gitlab-event-uuid"),
    ),
    "gitea": HeaderNames(
        event=("x-gitea-event", "x-gogs-event"),
        delivery=("x-gitea-delivery", "x-gogs-delivery"),
    ),
    "forgejo": HeaderNames(
        event=("x-forgejo-event", "x-gitea-event"),
        delivery=("x-forgejo-delivery", "x-gitea-delivery"),
    ),
    "bitbucket": HeaderNames(event=("x-event-key",), delivery=("x-request-uuid",)),
    "generic": HeaderNames(event=("x-railyard-event",), delivery=("x-railyard-delivery",)),
}

MAX_DELIVERY_ID_LENGTH = 200
"""Longer header values are hashed, so a sender cannot bloat the delivery record."""


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive; every lookup here uses lower case."""
    return {name.lower(): value for name, value in headers.items()}


def first_header(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
    """The first non-blank value among ``names`` in lower-cased ``headers``, else ""."""
    for name in names:
        value = headers.get(name, "").strip()
        if value:
            return value
    return ""


MAX_EVENT_NAME_LENGTH = 100


def event_name(provider: Provider, headers: Mapping[str, str]) -> str:
    name = first_header(headers, HEADERS[provider].event)
    return name[:MAX_EVENT_NAME_LENGTH] if name.isprintable() else ""


def delivery_id(provider: Provider, headers: Mapping[str, str], body: bytes) -> str:
    value = first_header(headers, HEADERS[provider].delivery)
    if not value:
        return "sha256:" + hashlib.sha256(body).hexdigest()
    if len(value) > MAX_DELIVERY_ID_LENGTH or not value.isprintable():
        return "sha256:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()
    return value
