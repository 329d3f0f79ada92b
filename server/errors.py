"""One error shape for the whole API: ``{"error": {"code", "message"}}``.

:class:`ApiError` is what every layer raises for a client's mistake; the
handlers in :mod:`server.error_handlers` turn it into JSON under ``/api`` and
into a page elsewhere, so bad input never surfaces as a 500.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

CODES = {
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


class ApiError(Exception):
    """A client error with a stable machine code and a human message."""

    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.detail}}


def invalid(field: str, message: str, *, code: str = "invalid", problem: str = "") -> ApiError:
    """A 422 that names ``field``: ``message`` for people, ``problem`` in ``fields``."""
    return ApiError(
        422, code, f"{field}: {message}", fields=[{"field": field, "message": problem or message}]
    )


def fields_error(problems: list[tuple[str, str]]) -> ApiError:
    """One 422 that names each ``(field, problem)``."""
    fields = [{"field": field, "message": message} for field, message in problems]
    text = "; ".join(f"{field}: {message}" for field, message in problems)
    return ApiError(422, "invalid", text, fields=fields)


def validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    """Turn pydantic's errors into one 422 that names each field."""
    return fields_error(
        [
            (prefix + (".".join(str(p) for p in err["loc"]) or "body"), err["msg"])
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
    )
