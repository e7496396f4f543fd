"""Authentication: which tokens open the API, which do not, and the first-start bootstrap."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from controller.api.app import create_app
from controller.api.auth import authenticate, decode_token, issue_token
from controller.api.bootstrap import bootstrap
from controller.api.deps import get_now
from controller.errors import AuthError, ValidationError
from controller.settings import Settings
from controller.store.db import Database
from controller.store.models import User
from controller.store.repositories import TenantRepository, TokenRepository, UserRepository

KEY = "auth-test-signing-key-" + "y" * 48
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", secret_key=KEY, token_ttl_seconds=3600)


@pytest.fixture
async def user(db: Database) -> User:
    async with db.session() as session:
        tenant = await TenantRepository(session, None).create("acme")
        return await UserRepository(session, tenant.id).create("owner@acme.example")


@pytest.fixture
def api(settings: Settings, db: Database) -> FastAPI:
    app = create_app(settings, database=db)
    app.dependency_overrides[get_now] = lambda: NOW
    return app


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://railyard.test") as client:
        yield client


async def token_for(
    db: Database, user: User, settings: Settings, *, now: datetime = NOW, ttl: int | None = None
) -> str:
    async with db.session() as session:
        return await issue_token(session, user, settings, now, ttl_seconds=ttl)


def claims_of(token: str) -> dict[str, object]:
    decoded: dict[str, object] = jwt.decode(
        token, KEY, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    return decoded


def unsigned(claims: dict[str, object]) -> str:
    """A token with ``alg: none`` and no signature (what a forger would send)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def assert_rejected(
    client: httpx.AsyncClient, headers: dict[str, str], message: str = "invalid token"
) -> None:
    response = await client.get("/api/v1/apps", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"error": "unauthorized", "message": message}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- what opens the API ------------------------------------------------------------------


async def test_a_valid_token_opens_the_api(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings
) -> None:
    token = await token_for(db, user, settings)

    response = await client.get("/api/v1/apps", headers=bearer(token))

    assert response.status_code == 200
    claims = claims_of(token)
    assert set(claims) == {"sub", "tid", "jti", "iat", "exp"}
    assert (claims["sub"], claims["tid"]) == (user.id, user.tenant_id)
    assert claims["exp"] == int((NOW + timedelta(hours=1)).timestamp())
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


async def test_missing_credentials(client: httpx.AsyncClient) -> None:
    message = "missing bearer token (send 'Authorization: Bearer <token>')"
    await assert_rejected(client, {}, message)
    await assert_rejected(client, {"Authorization": "Basic b3duZXI6cGFzcw=="}, message)


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "Bearer", "eyJhbGciOiJIUzI1NiJ9.e30."])
async def test_garbage_tokens(client: httpx.AsyncClient, garbage: str) -> None:
    await assert_rejected(client, bearer(garbage))


async def test_expired_token(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings
) -> None:
    token = await token_for(db, user, settings, now=NOW - timedelta(hours=2))
    await assert_rejected(client, bearer(token), "token expired")


async def test_the_clock_decides_expiry(
    api: FastAPI, client: httpx.AsyncClient, db: Database, user: User, settings: Settings
) -> None:
    token = await token_for(db, user, settings, ttl=60)
    assert (await client.get("/api/v1/apps", headers=bearer(token))).status_code == 200

    api.dependency_overrides[get_now] = lambda: NOW + timedelta(seconds=60)

    await assert_rejected(client, bearer(token), "token expired")


async def test_revoking_the_current_token(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings
) -> None:
    token, other = await token_for(db, user, settings), await token_for(db, user, settings)

    response = await client.post("/api/v1/auth/revoke", headers=bearer(token))

    assert response.status_code == 204
    await assert_rejected(client, bearer(token), "token revoked")
    assert (await client.get("/api/v1/apps", headers=bearer(other))).status_code == 200
    async with db.session() as session:
        record = await TokenRepository(session, None).get(str(claims_of(token)["jti"]))
    assert record is not None and record.revoked_at == NOW


async def test_algorithm_none_is_refused(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings
) -> None:
    claims = claims_of(await token_for(db, user, settings))
    await assert_rejected(client, bearer(unsigned(claims)))


@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
async def test_other_algorithms_with_the_same_key_are_refused(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings, algorithm: str
) -> None:
    claims = claims_of(await token_for(db, user, settings))
    forged = jwt.encode(claims, KEY, algorithm=algorithm)
    await assert_rejected(client, bearer(forged))


async def test_a_token_signed_with_another_key_is_refused(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings
) -> None:
    claims = claims_of(await token_for(db, user, settings))
    forged = jwt.encode(claims, "another-key-" + "z" * 40, algorithm="HS256")
    await assert_rejected(client, bearer(forged))


@pytest.mark.parametrize("claim", ["sub", "tid", "jti", "iat", "exp"])
async def test_every_claim_is_required(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings, claim: str
) -> None:
    claims = claims_of(await token_for(db, user, settings))
    del claims[claim]
    await assert_rejected(client, bearer(jwt.encode(claims, KEY, algorithm="HS256")))


async def test_a_signed_token_without_a_stored_record_is_refused(
    client: httpx.AsyncClient, db: Database, user: User, settings: Settings
) -> None:
    """Possession of the key is not enough: the jti must name an issued token of that user."""
    claims = claims_of(await token_for(db, user, settings))
    unknown_jti = jwt.encode({**claims, "jti": str(uuid.uuid4())}, KEY, algorithm="HS256")
    async with db.session() as session:
        stranger = await UserRepository(session, user.tenant_id).create("stranger@acme.example")
    other_user = jwt.encode({**claims, "sub": stranger.id}, KEY, algorithm="HS256")
    await assert_rejected(client, bearer(unknown_jti))
    await assert_rejected(client, bearer(other_user))


def test_decode_checks_expiry_against_the_given_time() -> None:
    claims = {"sub": "u", "tid": "t", "jti": "j", "iat": 0, "exp": int(NOW.timestamp())}
    token = jwt.encode(claims, KEY, algorithm="HS256")
    assert decode_token(token, KEY, NOW - timedelta(seconds=1)).token_id == "j"
    with pytest.raises(AuthError, match="token expired"):
        decode_token(token, KEY, NOW)


@pytest.mark.parametrize("value", [123, "", None])
def test_decode_wants_string_ids(value: object) -> None:
    claims = {"sub": value, "tid": "t", "jti": "j", "iat": 0, "exp": int(NOW.timestamp())}
    with pytest.raises(AuthError, match="invalid token"):
        decode_token(jwt.encode(claims, KEY, algorithm="HS256"), KEY, NOW - timedelta(days=1))


async def test_a_token_needs_a_positive_lifetime(
    db: Database, user: User, settings: Settings
) -> None:
    with pytest.raises(ValidationError, match="positive"):
        await token_for(db, user, settings, ttl=0)


# -- bootstrap ---------------------------------------------------------------------------


async def test_first_start_creates_the_owner_and_a_private_token_file(
    db: Database, settings: Settings
) -> None:
    token = await bootstrap(db, settings, NOW)

    assert token is not None
    path = settings.home / "token"
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    async with db.session() as session:
        principal = await authenticate(session, token, KEY, NOW)
        tenant = await TenantRepository(session, None).get_by_name("default")
        owner = await UserRepository(session, principal.tenant_id).get(principal.user_id)
    assert tenant is not None and principal.tenant_id == tenant.id
    assert owner is not None and (owner.email, owner.role) == ("owner@localhost", "owner")
    assert claims_of(token)["exp"] == int((NOW + timedelta(hours=1)).timestamp())


async def test_a_second_start_keeps_a_working_token(db: Database, settings: Settings) -> None:
    first = await bootstrap(db, settings, NOW)

    again = await bootstrap(db, settings, NOW + timedelta(minutes=5))

    assert again is None
    assert (settings.home / "token").read_text().strip() == first


@pytest.mark.parametrize("damage", ["missing", "garbage", "expired", "revoked"])
async def test_a_start_replaces_a_token_that_no_longer_works(
    db: Database, settings: Settings, damage: str
) -> None:
    first = await bootstrap(db, settings, NOW)
    assert first is not None
    path = settings.home / "token"
    later = NOW
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_text("not a token")
        path.chmod(0o644)
    elif damage == "expired":
        later = NOW + timedelta(hours=2)
    else:
        async with db.session() as session:
            await TokenRepository(session, None).revoke(str(claims_of(first)["jti"]), NOW)

    second = await bootstrap(db, settings, later)

    assert second is not None and second != first
    assert path.read_text().strip() == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    async with db.session() as session:
        principal = await authenticate(session, second, KEY, later)
    assert principal.user_id == claims_of(first)["sub"]
