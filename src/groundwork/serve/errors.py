"""HTTP errors: one JSON shape, ``{"error": {"code", "message"}}``, with stable codes.

The caller's mistakes (``RequestError``, ``FilterError``) are 422 with the message; a missing index is
409; a read past its time budget is 503 with Retry-After; an unexpected exception is a 500 that names the request id and is logged with its traceback,
its message never sent to the client.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from groundwork.errors import FilterError, GroundworkError, QueryTimeoutError, QuotaExceeded, StoreError
from groundwork.serve import schemas as S


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status`` (and ``headers``)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def user_error(exc: GroundworkError) -> ApiError:
    """The HTTP form of an error Groundwork raised on purpose."""
    if isinstance(exc, QueryTimeoutError):
        return ApiError(503, "timeout", str(exc), {"Retry-After": "5"})
    if isinstance(exc, FilterError):
        return ApiError(422, "invalid_filter", str(exc))
    if isinstance(exc, StoreError):
        return ApiError(409, "no_index", str(exc))
    if isinstance(exc, QuotaExceeded):
        return ApiError(429, "quota_exceeded", str(exc), {"Retry-After": str(exc.retry_after_s)})
    return ApiError(422, "invalid_request", str(exc))


ERROR = {"model": S.ErrorBody}
AUTH_ERRORS = {401: ERROR, 403: ERROR, 429: ERROR, 422: ERROR}
