"""Is this delivery really from the forge? Constant-time checks, one scheme per provider.

    provider   header (first one present is checked)     value
    github     X-Hub-Signature-256                        sha256=<hex HMAC-SHA256(secret, body)>
    gitea      X-Gitea-Signature                          <hex HMAC-SHA256(secret, body)>
    forgejo    X-Forgejo-Signature, X-Gitea-Signature     <hex HMAC-SHA256(secret, body)>
    gitlab     X-Gitlab-Token                             the secret itself (GitLab does not sign)
    bitbucket  X-Hub-Signature                            sha256=<hex HMAC-SHA256(secret, body)>
    generic    X-Railyard-Signature                       sha256=<hex HMAC-SHA256(secret, body)>

The HMAC covers the raw body bytes exactly as received, so verification runs
before any parsing. An app without a secret accepts nothing: an HMAC keyed
with the empty string is one anybody can compute. Neither the secret nor the
received signature ever leaves this module (errors carry a reason only).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from webhook.errors import SignatureRejected
from webhook.events import Provider
from webhook.headers import first_header, lower_keys

MISSING = "missing signature"
BAD = "bad signature"
UNCONFIGURED = "no webhook secret configured"


@dataclass(frozen=True, slots=True)
class SignatureScheme:
    method: Literal["hmac-sha256", "token"]
    headers: tuple[str, ...]
    """Lower-case header names; the first one present is the one checked."""
    prefix: str = ""


SCHEMES: dict[Provider, SignatureScheme] = {
    "github": SignatureScheme("hmac-sha256", ("x-hub-signature-256",), "sha256="),
    "gitea": SignatureScheme("hmac-sha256", ("x-gitea-signature",)),
    "forgejo": SignatureScheme("hmac-sha256", ("x-forgejo-signature", "x-gitea-signature")),
    "gitlab": SignatureScheme("token", ("x-gitlab-token",)),
    "bitbucket": SignatureScheme("hmac-sha256", ("x-hub-signature",), "sha256="),
    "generic": SignatureScheme("hmac-sha256", ("x-railyard-signature",), "sha256="),
}

HEADER_DISPLAY_NAMES = {
    "x-hub-signature-256": "X-Hub-Signature-256",
    "x-gitea-signature": "X-Gitea-Signature",
    "x-forgejo-signature": "X-Forgejo-Signature",
    "x-gitlab-token": "X-Gitlab-Token",
    "x-hub-signature": "X-Hub-Signature",
    "x-railyard-signature": "X-Railyard-Signature",
}


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(
    provider: Provider, secret: str, body: bytes, headers: Mapping[str, str]
) -> None:
    """Return if ``body`` carries a valid signature for ``secret``; raise ``SignatureRejected``."""
    if not secret:
        raise SignatureRejected(UNCONFIGURED)
    scheme = SCHEMES[provider]
    received = first_header(lower_keys(headers), scheme.headers)
    if not received:
        raise SignatureRejected(MISSING)
    if scheme.method == "token":
        # Compare digests so the comparison time does not depend on the secret's length.
        expected = hashlib.sha256(secret.encode("utf-8")).digest()
        actual = hashlib.sha256(received.encode("utf-8", "replace")).digest()
    else:
        if not received.lower().startswith(scheme.prefix):
            raise SignatureRejected(BAD)
        expected = hmac_sha256_hex(secret, body).encode("ascii")
        actual = received[len(scheme.prefix) :].lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected, actual):
        raise SignatureRejected(BAD)


def signature_headers(provider: Provider, secret: str, body: bytes) -> dict[str, str]:
    """The header a forge would send for ``body``: for tests, benchmarks and the CLI."""
    scheme = SCHEMES[provider]
    name = HEADER_DISPLAY_NAMES[scheme.headers[0]]
    if scheme.method == "token":
        return {name: secret}
    return {name: scheme.prefix + hmac_sha256_hex(secret, body)}
