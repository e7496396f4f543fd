"""``GET /healthz``: open, for load balancers and ``railyard up``'s readiness wait."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from controller.api.deps import DatabaseDep
from controller.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(database: DatabaseDep) -> JSONResponse:
    if await database.ping():
        return JSONResponse(Health(status="ok", database="ok").model_dump())
    body = Health(status="unavailable", database="unreachable")
    return JSONResponse(body.model_dump(), status_code=503)
