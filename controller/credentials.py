"""Credentials for private repositories, handed to the Git adapter without ever being logged.

An app may carry an HTTPS username and token, or an SSH deploy key, stored
encrypted (``App.credentials_encrypted``). Before a git operation, the caller puts the app's
decrypted pair into a ``RepositoryCredentials`` by URL; the Git adapter asks it when
the remote wants authentication. The pair lives only in this process's memory.
"""

from __future__ import annotations

import json

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from controller.errors import ValidationError
from controller.source.base import SshKey
from controller.store.crypto import SecretBox
from controller.store.models import App


class RepositoryCredentials:
    """URL -> credentials; callable as the Git adapter's ``credentials`` provider."""

    def __init__(self) -> None:
        self._pairs: dict[str, tuple[str, str] | SshKey] = {}

    def __call__(self, url: str) -> tuple[str, str] | SshKey | None:
        return self._pairs.get(url)

    def load(self, app: App, box: SecretBox | None) -> None:
        """Use the app's stored credentials for its repository (or none, if it has none)."""
        if box is None or not app.credentials_encrypted:
            self._pairs.pop(app.repo_url, None)
            return
        self._pairs[app.repo_url] = decode(box.decrypt(app.credentials_encrypted))


def encode(username: str, token: str) -> str:
    return json.dumps({"username": username, "token": token})


def encode_ssh_key(private_key: str, username: str = "git") -> str:
    """Check that ``private_key`` is an unencrypted OpenSSH/PEM private key, then encode it."""
    try:
        serialization.load_ssh_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValidationError(
            "ssh_private_key: expected an unencrypted OpenSSH private key "
            "(ssh-keygen -t ed25519 -N '')"
        ) from exc
    return json.dumps({"username": username, "ssh_private_key": private_key})


def decode(text: str) -> tuple[str, str] | SshKey:
    try:
        body = json.loads(text)
        if "ssh_private_key" in body:
            return SshKey(str(body["ssh_private_key"]), str(body.get("username") or "git"))
        return str(body["username"]), str(body["token"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError("stored repository credentials are unreadable") from exc
