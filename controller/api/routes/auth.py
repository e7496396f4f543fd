"""``/api/v1/auth``: what a token holder can do with their own token."""

from __future__ import annotations

from fastapi import APIRouter, Response

from controller.api.deps import CurrentPrincipalDep, NowDep, SessionDep
from controller.store.repositories import TokenRepository

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/revoke", status_code=204)
async def revoke_current_token(
    session: SessionDep, principal: CurrentPrincipalDep, now: NowDep
) -> Response:
    """Revoke the token this request was made with; it stops working at once."""
    await TokenRepository(session, principal.tenant_id).revoke(principal.token_id, now)
    return Response(status_code=204)
