"""The OpenAPI document, written from the API routes and their pydantic models.

Request bodies, queries and answers are the models the routes validate with
and answer with (``components.schemas``); the responses every route shares
(401, the CSRF 403, 400/413/415/422 of a body) are added from what the route
declares, so no route documents them by hand or forgets one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.convertors import IntegerConvertor
from starlette.routing import BaseRoute

from server import __version__
from server.api import PATH_MAX_LENGTH, ApiRoute, Raw
from server.schemas import ErrorOut

BINARY = {"type": "string", "format": "binary"}

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF.format(model="ErrorOut")}

INFO = {
    "title": "Onsite API",
    "version": __version__,
    "description": (
        "Errors are JSON {error: {code, message, fields?}} with a 4xx status. "
        "State-changing calls need the header X-Requested-With: onsite. "
        "Log in with POST /api/session; the session is a cookie."
    ),
}


def api_routes(routes: Iterable[BaseRoute]) -> list[ApiRoute]:
    return [r for r in routes if isinstance(r, ApiRoute)]


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The whole document for the app's ``routes``."""
    api = api_routes(routes)
    schemas, refs = _schemas(api)
    paths: dict[str, dict[str, Any]] = {}
    for route in api:
        paths.setdefault(route.path_format, {})[route.method.lower()] = _operation(
            route, refs, schemas
        )
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "onsite_session"}
            },
        },
    }


def _models(route: ApiRoute) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    if isinstance(route.body, type):
        found.append((route.body, "validation"))
    if route.query is not None:
        found.append((route.query, "validation"))
    for answer in route.responses.values():
        model = answer[0] if isinstance(answer, tuple) else answer
        if isinstance(model, type):
            found.append((model, "serialization"))
    return found


def _schemas(
    api: list[ApiRoute],
) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = list(
        dict.fromkeys([(ErrorOut, "serialization"), *(m for r in api for m in _models(r))])
    )
    refs, top = models_json_schema(wanted, ref_template=REF)
    # Keyed by what was asked for: pydantic's key type also allows dataclasses.
    return top.get("$defs", {}), {key: refs[key] for key in wanted}


def _operation(
    route: ApiRoute,
    refs: dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.handler.__name__,
        "summary": route.summary,
        "parameters": _path_parameters(route),
        "responses": {},
    }
    if route.description:
        op["description"] = route.description
    if route.login:
        op["security"] = [{"session": []}]
    if route.query is not None:
        op["parameters"] += _query_parameters(refs[(route.query, "validation")], schemas)
    if isinstance(route.body, Raw):
        op["requestBody"] = {
            "required": True,
            "content": {route.body.media_type: {"schema": route.body.schema or BINARY}},
        }
    elif route.body is not None:
        op["requestBody"] = {
            # An empty body is read as {}: optional when no field is required.
            "required": bool(_component(refs[(route.body, "validation")], schemas).get("required")),
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    answers: dict[int, Any] = dict(route.responses)
    for status, text in _shared_answers(route).items():
        given = answers.get(status)
        answers[status] = f"{given} {text}" if isinstance(given, str) else given or text
    for status in sorted(answers):
        op["responses"][str(status)] = _response(status, answers[status], refs)
    return op


def _path_parameters(route: ApiRoute) -> list[dict[str, Any]]:
    params = []
    for name, convertor in route.param_convertors.items():
        schema: dict[str, Any] = {"type": "string"}
        if isinstance(convertor, IntegerConvertor):
            schema = {"type": "integer", "minimum": 0}
        elif name.endswith("_id"):
            schema = {"type": "string", "format": "uuid"}
        elif name in PATH_MAX_LENGTH:
            schema["maxLength"] = PATH_MAX_LENGTH[name]
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _component(ref: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = schemas[ref["$ref"].rsplit("/", 1)[1]]
    return found


def _query_parameters(ref: dict[str, Any], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    model = _component(ref, schemas)
    required = set(model.get("required", ()))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": schema}
        for name, schema in model.get("properties", {}).items()
    ]


def _shared_answers(route: ApiRoute) -> dict[int, str]:
    """What the route's declaration implies: login, roles, CSRF, a body."""
    shared: dict[int, list[str]] = {}
    if route.login:
        shared.setdefault(401, []).append("Not logged in, or the session has ended.")
    if route.roles:
        roles = ", ".join(sorted(r.value for r in route.roles))
        shared.setdefault(403, []).append(f"Only for: {roles} (admins may do everything).")
    if route.method != "GET":
        shared.setdefault(403, []).append("No X-Requested-With: onsite header (CSRF defence).")
    if isinstance(route.body, Raw):
        shared.setdefault(413, []).append("The body is over the size limit.")
    elif route.body is not None:
        shared.setdefault(400, []).append("The body is not valid JSON.")
        shared.setdefault(413, []).append("The body is over 256 KB.")
        shared.setdefault(415, []).append("The body is not application/json.")
        shared.setdefault(422, []).append("A field is missing or invalid; `fields` names each.")
    if route.query is not None:
        shared.setdefault(422, []).append("A query parameter is invalid; `fields` names each.")
    return {status: " ".join(texts) for status, texts in shared.items()}


def _response(
    status: int, answer: Any, refs: dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]
) -> dict[str, Any]:
    if isinstance(answer, Raw):
        return {
            "description": answer.description or answer.media_type,
            "content": {answer.media_type: {"schema": answer.schema or BINARY}},
        }
    model, text = (answer, "") if isinstance(answer, type) else (None, answer)
    if isinstance(answer, tuple):
        model, text = answer
    if model is not None:
        text = text or _first_line(model.__doc__)
        ref = refs[(model, "serialization")]
        return {"description": text, "content": {"application/json": {"schema": ref}}}
    if status >= 400:
        return {"description": text, "content": {"application/json": {"schema": ERROR_REF}}}
    return {"description": text}


def _first_line(text: str | None) -> str:
    return re.split(r"\n\s*\n", (text or "").strip())[0].replace("\n", " ")
