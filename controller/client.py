"""A small client of the status API, used by the CLI.

Reads ``RAILYARD_API_URL`` (default http://127.0.0.1:8000) and the token from
``RAILYARD_TOKEN`` or ``$RAILYARD_HOME/token``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from controller.errors import AuthError, RailyardError


class ApiError(RailyardError):
    """The API answered with an error body (its ``message`` is shown to the user)."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message") or body), details=body.get("details"))
        self.status_code = status_code
        self.code = str(body.get("error", "error"))


class ApiClient:
    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    @classmethod
    def from_environment(cls) -> ApiClient:
        base_url = os.environ.get("RAILYARD_API_URL", "http://127.0.0.1:8000")
        token = os.environ.get("RAILYARD_TOKEN")
        if not token:
            token_file = Path(os.environ.get("RAILYARD_HOME", ".railyard")) / "token"
            if token_file.exists():
                token = token_file.read_text().strip()
        if not token:
            raise AuthError(
                "no API token: set RAILYARD_TOKEN, or run where `railyard up` wrote "
                "$RAILYARD_HOME/token"
            )
        return cls(base_url, token)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/api/v1{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise RailyardError(
                f"cannot reach the Railyard API at {self._http.base_url}: {exc}. "
                "Is `railyard up` running?"
            ) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _error_body(response))
        return response

    def request_text(self, method: str, path: str, **kwargs: Any) -> str:
        response = self._send(method, path, **kwargs)
        return response.text

    def stream_lines(self, method: str, path: str, **kwargs: Any) -> Iterator[str]:
        """Lines of a streamed response, as they arrive (no read timeout)."""
        try:
            with self._http.stream(
                method, f"/api/v1{path}", timeout=httpx.Timeout(30.0, read=None), **kwargs
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, _error_body(response))
                yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise RailyardError(f"lost the Railyard API at {self._http.base_url}: {exc}") from exc

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self._http.close()


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text or response.reason_phrase}
    return body if isinstance(body, dict) else {"message": str(body)}
