"""Credentials for private repositories, handed to the Git adapter without ever being logged.

An app may carry an HTTPS username and token, stored encrypted
(``App.credentials_encrypted``). Before a git operation, the caller puts the app's
decrypted pair into a ``RepositoryCredentials`` by URL; the Git adapter asks it when
the remote wants authentication. The pair lives only in this process's memory.
"""

from __future__ import annotations

import json

from controller.errors import ValidationError
from controller.store.crypto import SecretBox
from controller.store.models import App


class RepositoryCredentials:
    """URL -> (username, token); callable as the Git adapter's ``credentials`` provider."""

    def __init__(self) -> None:
        self._pairs: dict[str, tuple[str, str]] = {}

    def __call__(self, url: str) -> tuple[str, str] | None:
        return self._pairs.get(url)

    def load(self, app: App, box: SecretBox | None) -> None:
        """Use the app's stored credentials for its repository (or none, if it has none)."""
        if box is None or not app.credentials_encrypted:
            self._pairs.pop(app.repo_url, None)
            return
        self._pairs[app.repo_url] = decode(box.decrypt(app.credentials_encrypted))


def encode(username: str, token: str) -> str:
    return json.dumps({"username": username, "token": token})


def decode(text: str) -> tuple[str, str]:
    try:
        body = json.loads(text)
        return str(body["username"]), str(body["token"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError("stored repository credentials are unreadable") from exc
