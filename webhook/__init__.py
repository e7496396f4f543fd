"""Railyard's webhook receiver: change detection for GitHub, GitLab, Gitea, Forgejo, Bitbucket.

A FastAPI router (``make_webhook_router``) that verifies a delivery, turns it
into a ``WebhookEvent``, decides what it means for the app, records it and
enqueues work, all through the ``WebhookBackend`` port, so this package never
imports the store or the task queue. Modules, in the order a request meets them:

    router.py      the endpoint and its step order
    headers.py     which header names the event and the delivery, per forge
    verify.py      constant-time signature checks, per forge
    normalise.py   body decoding and dispatch to providers/ (pure)
    providers/     one module per payload format
    payload.py     typed reads from decoded JSON
    events.py      WebhookEvent, the normalised value
    decide.py      queued / ignored: <reason> (pure)
    backend.py     the port, and an in-memory fake
    errors.py      why a delivery is rejected
"""

from webhook.backend import InMemoryWebhookBackend, WebhookApp, WebhookBackend
from webhook.decide import Decision, decide
from webhook.events import PROVIDERS, Provider, Repository, WebhookEvent
from webhook.normalise import normalise
from webhook.router import BackendDep, get_webhook_backend, make_webhook_router
from webhook.verify import signature_headers, verify_signature

__all__ = [
    "PROVIDERS",
    "BackendDep",
    "Decision",
    "InMemoryWebhookBackend",
    "Provider",
    "Repository",
    "WebhookApp",
    "WebhookBackend",
    "WebhookEvent",
    "decide",
    "get_webhook_backend",
    "make_webhook_router",
    "normalise",
    "signature_headers",
    "verify_signature",
]
