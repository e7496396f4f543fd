"""Every error leaves the API as ``{"error": code, "message": text, "details"?: {...}}``.

* ``RailyardError`` answers its own ``status_code`` and ``to_dict()``; a 401 adds
  ``WWW-Authenticate: Bearer``.
* A request that fails validation answers 422 naming each bad field.
* Starlette's own errors (unknown route, wrong method) keep their status.
* Anything else is logged with its traceback and answers a bare 500: no
  traceback, SQL or exception text ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from controller.errors import RailyardError, ValidationError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RailyardError, railyard_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


def error_response(exc: RailyardError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(status_code=exc.status_code, content=exc.to_dict(), headers=headers)


async def railyard_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RailyardError):
        return await unexpected_error(request, exc)
    if exc.status_code >= 500:
        log.warning("%s %s: %s: %s", request.method, request.url.path, exc.code, exc.message)
    return error_response(exc)


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        return await unexpected_error(request, exc)
    return error_response(describe_validation_errors(exc.errors()))


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):
        return await unexpected_error(request, exc)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        status_code=exc.status_code,
        content={"error": code, "message": str(exc.detail)},
        headers=exc.headers,
    )


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        status_code=500,
        content={"error": "internal_error", "message": "internal server error"},
    )


def describe_validation_errors(errors: Sequence[Any]) -> ValidationError:
    """Pydantic's errors as one readable message plus a list naming each field.

    The rejected input is deliberately left out: it may hold something secret.
    """
    issues: list[dict[str, str]] = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        where = location[0] if location else "request"
        field = ".".join(location[1:]) or where
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            # Its location is a character offset, not a field.
            field, message = where, "is not valid JSON"
        issues.append({"field": field, "location": where, "message": message})
    summary = "; ".join(f"{issue['field']}: {issue['message']}" for issue in issues)
    return ValidationError(f"invalid request: {summary}", details={"errors": issues})
