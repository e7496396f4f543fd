"""Headers and body in, ``WebhookEvent`` out: pure, so every forge's fixtures test it.

This module knows how a body is encoded (JSON, or GitHub's and Gitea's
optional ``application/x-www-form-urlencoded`` with a ``payload`` field) and
which headers name the event and the delivery; what the body *means* is left
to ``webhook.providers``. Nothing here verifies signatures: callers verify the
raw bytes first (``webhook.verify``) and only then parse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from webhook.errors import MalformedPayload
from webhook.events import Delivery, Provider, WebhookEvent
from webhook.headers import delivery_id, event_name, lower_keys
from webhook.payload import Payload
from webhook.providers import NORMALISERS

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def parse_body(body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    """Decode a webhook body into its JSON object, or raise ``MalformedPayload``."""
    text: str | bytes = body
    if content_type.split(";", 1)[0].strip().lower() == FORM_CONTENT_TYPE:
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedPayload("malformed form body") from exc
        if len(fields.get("payload", ())) != 1:
            raise MalformedPayload("form body without one payload field")
        text = fields["payload"][0]
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedPayload("malformed JSON") from exc
    if not isinstance(data, dict):
        raise MalformedPayload("JSON body is not an object")
    return data


def normalise(
    provider: Provider,
    headers: Mapping[str, str],
    body: bytes | Mapping[str, Any],
    *,
    tracked_branch: str = "",
) -> WebhookEvent:
    """The event one delivery describes.

    ``body`` is the raw request body, or an already decoded JSON object (the
    delivery id then falls back to a hash of its canonical JSON form).
    """
    lowered = lower_keys(headers)
    if isinstance(body, bytes):
        raw = body
        data: Mapping[str, Any] = parse_body(body, lowered.get("content-type", ""))
    else:
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
        data = body
    delivery = Delivery(
        provider=provider,
        delivery_id=delivery_id(provider, lowered, raw),
        event_name=event_name(provider, lowered),
    )
    return NORMALISERS[provider](delivery, Payload(data), tracked_branch)
