"""The OpenAPI document, built from the route table and the endpoints' docstrings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from server import __version__

schemas = SchemaGenerator(
    {
        "openapi": "3.0.3",
        "info": {
            "title": "Onsite API",
            "version": __version__,
            "description": (
                "Errors are JSON {error: {code, message}}. State-changing calls need the "
                "header X-Requested-With: onsite. Log in with POST /api/session."
            ),
        },
    }
)


async def openapi(request: Request) -> Response:
    return JSONResponse(
        schemas.get_schema(routes=request.app.routes), media_type="application/vnd.oai.openapi+json"
    )


routes = [Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False)]
