"""The middleware that refuses addresses no database could look up: a page's
path or query with a NUL or a lone surrogate (PostgreSQL refuses them in
text, with a 500) is a 400 before any route runs.

API routes check their own path, query and body (:mod:`server.api`, a 422
naming the field), so ``/api/`` passes through to keep that contract.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api import text_problem


def address_problem(scope: Scope) -> str | None:
    """Why this request's path or query cannot be looked up, or None."""
    if problem := text_problem(scope["path"]):
        return f"The address {problem}."
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if problem := text_problem(key) or text_problem(value):
            return f"The query parameter {key!r} {problem}."
    return None


class StorableAddress:
    """Answers 400 to a page request whose address :func:`address_problem` refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/api/"):
            problem = address_problem(scope)
            if problem is not None:
                response = PlainTextResponse(f"400 Bad Request: {problem}", status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
