"""Webhook signatures: a forged or altered delivery never gets past verification."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.support import shared_ext
from webhook.errors import SignatureRejected
from webhook.events import PROVIDERS, Provider
from webhook.verify import hmac_sha256_hex, signature_headers, verify_signature

SECRET = "s3cret-for-tests"
BODY = b'{"ref": "refs/heads/main", "after": "abc"}'

# How each forge presents its signature, written out independently of webhook.verify.
EXPECTED_HEADER: dict[Provider, tuple[str, str]] = {
    "github": ("X-Hub-Signature-256", "sha256="),
    "gitea": ("X-Gitea-Signature", ""),
    "forgejo": ("X-Forgejo-Signature", ""),
    "bitbucket": ("X-Hub-Signature", "sha256="),
    "generic": ("X-Railyard-Signature", "sha256="),
}
HMAC_PROVIDERS = tuple(EXPECTED_HEADER)


def signed(provider: Provider, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    if provider == "gitlab":
        return {"X-Gitlab-Token": secret}
    name, prefix = EXPECTED_HEADER[provider]
    return {name: prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def rejection(provider: Provider, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(SignatureRejected) as caught:
        verify_signature(provider, SECRET, body, headers)
    return caught.value.reason


def test_github_docs_known_answer_vector() -> None:
    vector = json.loads(shared_ext("webhooks", "signature-test-vector.json").read_text())
    secret, payload = vector["secret"], vector["payload"].encode()

    assert hmac_sha256_hex(secret, payload) == vector["signature_hex"]
    verify_signature("github", secret, payload, vector["headers"]["github"])
    forge_headers = vector["headers"]["gitea_forgejo_same_algorithm"]
    verify_signature(
        "gitea", secret, payload, {"X-Gitea-Signature": forge_headers["X-Gitea-Signature"]}
    )
    verify_signature(
        "forgejo", secret, payload, {"X-Forgejo-Signature": forge_headers["X-Forgejo-Signature"]}
    )
    verify_signature(
        "bitbucket", secret, payload, vector["headers"]["bitbucket_cloud_same_algorithm"]
    )
    assert signature_headers("github", secret, payload) == vector["headers"]["github"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_good_signature_is_accepted(provider: Provider) -> None:
    verify_signature(provider, SECRET, BODY, signed(provider))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signature_helper_produces_what_each_forge_sends(provider: Provider) -> None:
    assert signature_headers(provider, SECRET, BODY) == signed(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signature_with_another_secret_is_rejected(provider: Provider) -> None:
    assert rejection(provider, signed(provider, secret="not-the-secret")) == "bad signature"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_signature_is_rejected(provider: Provider) -> None:
    assert rejection(provider, {"Content-Type": "application/json"}) == "missing signature"


@pytest.mark.parametrize("provider", HMAC_PROVIDERS)
def test_tampered_body_is_rejected(provider: Provider) -> None:
    tampered = BODY.replace(b"main", b"prod")
    assert rejection(provider, signed(provider), body=tampered) == "bad signature"


@pytest.mark.parametrize("provider", HMAC_PROVIDERS)
def test_one_flipped_hex_digit_is_rejected(provider: Provider) -> None:
    ((name, value),) = signed(provider).items()
    flipped = value[:-1] + ("0" if value[-1] != "0" else "1")
    assert rejection(provider, {name: flipped}) == "bad signature"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_app_without_secret_accepts_nothing(provider: Provider) -> None:
    # An HMAC keyed with "" is computable by anyone; Gitea even sends an empty digest.
    with pytest.raises(SignatureRejected) as caught:
        verify_signature(provider, "", BODY, signed(provider, secret=""))
    assert caught.value.reason == "no webhook secret configured"


def test_header_names_are_case_insensitive() -> None:
    ((name, value),) = signed("github").items()
    verify_signature("github", SECRET, BODY, {name.lower(): value})
    verify_signature(
        "github", SECRET, BODY, {name.upper(): value.upper().replace("SHA256=", "sha256=")}
    )


def test_forgejo_also_accepts_the_gitea_compatible_header() -> None:
    verify_signature(
        "forgejo", SECRET, BODY, {"X-Gitea-Signature": signed("gitea")["X-Gitea-Signature"]}
    )


def test_gitea_empty_signature_header_counts_as_missing() -> None:
    assert rejection("gitea", {"X-Gitea-Signature": ""}) == "missing signature"


def test_github_legacy_sha1_header_alone_is_not_enough() -> None:
    legacy = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert rejection("github", {"X-Hub-Signature": legacy}) == "missing signature"


def test_bitbucket_header_with_sha1_prefix_is_rejected() -> None:
    legacy = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert rejection("bitbucket", {"X-Hub-Signature": legacy}) == "bad signature"


def test_gitlab_token_must_equal_the_secret_exactly() -> None:
    assert rejection("gitlab", {"X-Gitlab-Token": SECRET + "x"}) == "bad signature"
    assert rejection("gitlab", {"X-Gitlab-Token": SECRET[:-1]}) == "bad signature"


def test_non_ascii_signature_is_rejected_not_crashing() -> None:
    assert rejection("github", {"X-Hub-Signature-256": "sha256=é" * 8}) == "bad signature"


def test_rejection_never_carries_the_secret_or_the_signature() -> None:
    headers = signed("github", secret="wrong-secret")
    with pytest.raises(SignatureRejected) as caught:
        verify_signature("github", SECRET, BODY, headers)
    text = repr(caught.value) + str(caught.value.to_dict())
    assert SECRET not in text
    assert headers["X-Hub-Signature-256"] not in text
