"""Encryption at rest for secrets Railyard must read back (webhook secrets).

A ``SecretBox`` is Fernet (AES-128-CBC + HMAC-SHA256, with a timestamp) under a
key derived by HKDF-SHA256 from the installation's signing key, so one
configured secret protects both tokens and stored secrets without the two
ever sharing key material directly. Changing the signing key makes stored
secrets unreadable: rotate them afterwards (the API's webhook-secret rotation).
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from controller.errors import ValidationError

_HKDF_INFO = b"railyard/secret-box/v1"


class SecretBox:
    def __init__(self, key: str) -> None:
        if not key:
            raise ValidationError("cannot build a secret box from an empty key")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            key.encode("utf-8")
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise ValidationError(
                "cannot decrypt a stored secret: it is corrupted or was encrypted under "
                "another signing key (rotate it)"
            ) from exc

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def new_webhook_secret() -> str:
    """A fresh random webhook secret (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)
