"""API authentication: HS256 JWT access tokens, each backed by an ``ApiToken`` row.

A token carries ``sub`` (user id), ``tid`` (tenant id), ``jti`` (the ApiToken
id), ``iat`` and ``exp``; every claim is required. Decoding pins the algorithm
to HS256, so ``alg: none`` or a token signed with another algorithm is refused
whatever its signature. The ``jti`` must name an ApiToken of the same user and
tenant that is not revoked: one indexed lookup per request, which is what makes
``POST /api/v1/auth/revoke`` take effect at once.

Time comes from the caller (``now``), never from a clock read here.

Not done yet (DESIGN.md asks for them): refresh tokens (an access token simply
lives ``settings.token_ttl_seconds``), and a revocation list in Redis (in memory
when embedded) in front of the per-request database lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlmodel.ext.asyncio.session import AsyncSession

from controller.errors import AuthError, ValidationError
from controller.settings import Settings
from controller.store.base import as_utc
from controller.store.models import User
from controller.store.repositories import TokenRepository

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "tid", "jti", "iat", "exp")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their tenant, and the token they presented."""

    user_id: str
    tenant_id: str
    token_id: str


async def issue_token(
    session: AsyncSession,
    user: User,
    settings: Settings,
    now: datetime,
    ttl_seconds: int | None = None,
) -> str:
    """Record a new ApiToken for ``user`` and return the signed JWT naming it."""
    ttl = settings.token_ttl_seconds if ttl_seconds is None else ttl_seconds
    if ttl <= 0:
        raise ValidationError(f"a token's lifetime must be positive, not {ttl}s")
    issued = as_utc(now)
    expires = issued + timedelta(seconds=ttl)
    record = await TokenRepository(session, user.tenant_id).create(user.id, expires)
    claims = {
        "sub": user.id,
        "tid": user.tenant_id,
        "jti": record.id,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, settings.signing_key(), algorithm=ALGORITHM)


def decode_token(token: str, key: str, now: datetime) -> Principal:
    """Check the signature, algorithm, claims and expiry; no database involved."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={
                "require": list(REQUIRED_CLAIMS),
                # Expiry is checked below against the caller's ``now``.
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise AuthError("invalid token") from exc
    for name in ("sub", "tid", "jti"):
        if not isinstance(claims[name], str) or not claims[name]:
            raise AuthError("invalid token")
    expires = claims["exp"]
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise AuthError("invalid token")
    if expires <= as_utc(now).timestamp():
        raise AuthError("token expired")
    return Principal(user_id=claims["sub"], tenant_id=claims["tid"], token_id=claims["jti"])


async def authenticate(session: AsyncSession, token: str, key: str, now: datetime) -> Principal:
    """Decode ``token`` and check that its ApiToken exists, matches and is not revoked."""
    principal = decode_token(token, key, now)
    record = await TokenRepository(session, principal.tenant_id).get(principal.token_id)
    if record is None or record.user_id != principal.user_id:
        raise AuthError("invalid token")
    if record.revoked_at is not None:
        raise AuthError("token revoked")
    return principal
