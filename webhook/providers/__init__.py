"""One normaliser per body format: raw forge payload in, ``WebhookEvent`` out.

Every normaliser is pure and has the same signature; Forgejo shares Gitea's.
``tracked_branch`` only matters where one delivery describes several refs
(Bitbucket): the change to that branch is the one reported.
"""

from __future__ import annotations

from collections.abc import Callable

from webhook.events import Delivery, Provider, WebhookEvent
from webhook.payload import Payload
from webhook.providers.bitbucket import normalise_bitbucket
from webhook.providers.generic import normalise_generic
from webhook.providers.gitea import normalise_gitea
from webhook.providers.github import normalise_github
from webhook.providers.gitlab import normalise_gitlab

Normaliser = Callable[[Delivery, Payload, str], WebhookEvent]

NORMALISERS: dict[Provider, Normaliser] = {
    "github": normalise_github,
    "gitlab": normalise_gitlab,
    "gitea": normalise_gitea,
    "forgejo": normalise_gitea,
    "bitbucket": normalise_bitbucket,
    "generic": normalise_generic,
}
