"""Failures turned into answers: JSON under ``/api``, an escaped page elsewhere,
in the request's language (the messages' catalog is :mod:`server.error_text`).

Pages are rendered through the error template, whose autoescaping covers
every message (a message may carry what a user typed, such as a path).
"""

from __future__ import annotations

import html
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from server.error_text import gettext_for, language_of
from server.errors import CODES, N_, ApiError, english
from server.templating import render

log = logging.getLogger("onsite")

# What Starlette's own errors say (a 404 of the router, a 405), for the catalog.
STARLETTE_DETAILS = (
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Bad Request"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Request Entity Too Large"),
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The HTML page for an error, in the request's language (``message`` is
    already in it)."""
    if not hasattr(request.state, "lang"):  # failed before the language was known
        request.state.lang = request.app.state.settings.default_language
    try:
        return render(request, "error.html", status_code=status, status=status, message=message)
    except Exception:  # the error page itself must never fail
        log.exception("rendering the error page failed")
        text = html.escape(f"{status} · {message}")
        return HTMLResponse(f"<!doctype html><title>{status}</title><p>{text}</p>", status)


def _answer(request: Request, error: ApiError) -> Response:
    try:
        gettext = gettext_for(language_of(request))
    except Exception:  # a broken catalog must not hide the error: say it in English
        log.exception("the server messages' catalog cannot be read")
        gettext = english
    if _is_api(request):
        return JSONResponse(error.body(gettext), status_code=error.status)
    return error_page(request, error.status, error.text(gettext))


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _answer(request, exc)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code
    return _answer(request, ApiError(exc.status_code, code, message))


async def server_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _answer(request, ApiError(500, "server_error", "Something went wrong on the server."))


exception_handlers = {
    ApiError: api_error_handler,
    HTTPException: http_exception_handler,
    Exception: server_error_handler,
}
