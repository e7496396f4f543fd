"""First start: the default tenant, its owner, and a token the CLI can read.

``bootstrap()`` is idempotent. It creates tenant ``default`` and user
``owner@localhost`` when missing, and makes sure ``HOME/token`` (mode 0600)
holds a token that still works, issuing a new one only when it does not.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from controller.api.auth import authenticate, issue_token
from controller.errors import AuthError
from controller.settings import Settings
from controller.store.db import Database
from controller.store.repositories import TenantRepository, UserRepository

log = logging.getLogger(__name__)

DEFAULT_TENANT = "default"
OWNER_EMAIL = "owner@localhost"


async def bootstrap(db: Database, settings: Settings, now: datetime) -> str | None:
    """Return the newly issued token, or None when the token file already works."""
    path = settings.home / "token"
    async with db.session() as session:
        tenant = await TenantRepository(session, None).get_by_name(DEFAULT_TENANT)
        if tenant is None:
            tenant = await TenantRepository(session, None).create(DEFAULT_TENANT)
            log.info("created tenant %r", DEFAULT_TENANT)
        users = UserRepository(session, tenant.id)
        owner = await users.get_by_email(OWNER_EMAIL)
        if owner is None:
            owner = await users.create(OWNER_EMAIL, role="owner")
            log.info("created user %r", OWNER_EMAIL)
        existing = _read_token(path)
        if existing is not None:
            try:
                principal = await authenticate(session, existing, settings.signing_key(), now)
            except AuthError as exc:
                log.info("token in %s no longer works (%s): issuing a new one", path, exc.message)
            else:
                if principal.user_id == owner.id:
                    return None
        token = await issue_token(session, owner, settings, now)
    # Written only after the commit: a token on disk always names a stored ApiToken.
    _write_private(path, token)
    log.info("wrote a new API token to %s", path)
    return token


def _read_token(path: Path) -> str | None:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def _write_private(path: Path, content: str) -> None:
    """Write ``content`` readable by its owner only (0600, also when the file existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, (content + "\n").encode("utf-8"))
    finally:
        os.close(descriptor)
