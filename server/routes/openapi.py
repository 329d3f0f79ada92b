"""The OpenAPI document at /api/openapi.json (written by server.openapi)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.openapi import document


async def openapi(request: Request) -> Response:
    app = request.app
    if not hasattr(app.state, "openapi"):  # the routes never change: built once
        app.state.openapi = document(app.routes)
    return JSONResponse(app.state.openapi, media_type="application/vnd.oai.openapi+json")


routes = [Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False)]
