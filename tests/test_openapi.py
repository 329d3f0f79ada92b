"""The OpenAPI document matches the route table exactly."""

from __future__ import annotations

import re

from starlette.routing import Route


def api_routes(app) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/") and route.include_in_schema:
            for method in route.methods or ():
                if method != "HEAD":
                    # OpenAPI paths carry no convertors: {index:int} is {index}.
                    pairs.add((re.sub(r":\w+}", "}", route.path), method.lower()))
    return pairs


async def test_every_api_route_is_documented_and_nothing_else(app, client):
    doc = (await client.get("/api/openapi.json")).json()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == api_routes(app)


async def test_every_operation_has_a_summary_and_responses(client):
    doc = (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            assert op.get("responses"), f"{method} {path} has no responses"


async def test_the_openapi_document_is_public_json(client):
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi")
