"""One error shape for the whole API: ``{"error": {"code", "message"}}``.

Handlers turn every failure on an ``/api`` path into that shape, so that a
client never has to parse HTML, and bad input never surfaces as a 500.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

log = logging.getLogger("onsite")

M = TypeVar("M", bound=BaseModel)

MAX_JSON_BYTES = 256 * 1024


class ApiError(Exception):
    """A client error with a stable machine code and a human message."""

    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.detail)
        return JSONResponse({"error": body}, status_code=self.status)


_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}


async def read_json(request: Request) -> Any:
    """The request body as JSON, or a 400/413/415 that says what is wrong."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise ApiError(413, "too_large", f"The body is over {MAX_JSON_BYTES} bytes.")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None


async def parse_body(request: Request, model: type[M]) -> M:
    """Read and validate the JSON body against ``model``; 422 names the field."""
    data = await read_json(request)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError) -> ApiError:
    """Turn pydantic's errors into one ApiError that names each field."""
    problems = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        problems.append({"field": where, "message": err["msg"]})
    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return ApiError(422, "invalid", message, fields=problems)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if _is_api(request):
        return exc.response()
    return HTMLResponse(f"<h1>{exc.status}</h1><p>{exc.message}</p>", status_code=exc.status)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _is_api(request):
        code = _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        return ApiError(exc.status_code, code, message).response()
    from server.templating import render_error

    return render_error(request, exc.status_code, str(exc.detail))


async def server_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _is_api(request):
        return ApiError(500, "server_error", "Something went wrong on the server.").response()
    return HTMLResponse("<h1>500</h1>", status_code=500)


exception_handlers = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: server_error_handler,
}
