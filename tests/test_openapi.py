"""/api/openapi.json is written from the models the server validates with,
and what it documents is what the server does (every API answer in every
test is also checked against it: see ``tests/conftest.py``)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from starlette.routing import Route

from tests.conftest import CSRF, login


def api_routes(app) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/") and route.include_in_schema:
            for method in route.methods or ():
                if method != "HEAD":
                    pairs.add((route.path_format, method.lower()))
    return pairs


@pytest.fixture
async def doc(client) -> dict:
    return (await client.get("/api/openapi.json")).json()


def resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def json_bodies(doc: dict) -> list[tuple[str, str, dict]]:
    found = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                schema = resolve(doc, content["application/json"]["schema"])
                found.append((method, path, schema))
    return found


def concrete(path: str) -> str:
    """A path with its parameters filled in: ids that exist nowhere."""
    path = re.sub(r"\{\w+_id\}", str(uuid.uuid4()), path)
    path = path.replace("{index}", "0")
    return re.sub(r"\{\w+\}", "nobody", path)


def wrong_value(doc: dict, schema: dict) -> Any:
    """A value the schema does not allow: too long, not in the enum, the wrong type."""
    schema = resolve(doc, schema)
    options = [resolve(doc, s) for s in schema.get("anyOf", [schema])]
    kinds = {o.get("type") for o in options}
    if any("enum" in o for o in options):
        return "no-such-value"
    if "maxLength" in schema:
        return "x" * (schema["maxLength"] + 1)
    if kinds & {"integer", "number"}:
        return "not a number"
    if kinds & {"object", "array"} or any("properties" in o for o in options):
        return "not a structure"
    return {"not": "a string"}


async def test_every_api_route_is_documented_and_nothing_else(app, doc):
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == api_routes(app)


async def test_every_operation_has_a_summary_and_its_answers(doc):
    assert doc["openapi"].startswith("3.1")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            assert any(s.startswith("2") for s in op["responses"]), f"{method} {path}"
            for status, answer in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d", status), f"{method} {path}: {status!r}"
                assert answer["description"], f"{method} {path} {status}"
                if status.startswith("4"):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorOut"}


async def test_bodies_and_answers_are_components_written_from_the_models(doc):
    schemas = doc["components"]["schemas"]
    assert {"ReportIn", "ReportOut", "PhotoOut", "ErrorOut", "UserOut"} <= set(schemas)
    report = doc["paths"]["/api/reports/{report_id}"]["put"]
    body = report["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ReportIn"}
    assert set(schemas["ReportIn"]["required"]) == {"site", "incident_type", "occurred_at"}
    answer = report["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/ReportOut"}


async def test_me_documents_its_401_as_an_error(doc):
    me = doc["paths"]["/api/me"]["get"]["responses"]
    assert set(me) == {"200", "401"}
    assert me["401"]["description"].startswith("Not logged in")


async def test_a_write_documents_the_csrf_403_and_the_errors_of_its_body(doc):
    answers = doc["paths"]["/api/reports/{report_id}"]["put"]["responses"]
    assert {"400", "401", "403", "409", "413", "415", "422"} <= set(answers)
    assert "X-Requested-With" in answers["403"]["description"]


async def test_query_parameters_come_from_the_query_model(doc):
    params = {p["name"]: p for p in doc["paths"]["/api/reports"]["get"]["parameters"]}
    assert set(params) == {
        "status",
        "severity",
        "type",
        "site",
        "assignee",
        "from",
        "to",
        "since",
        "cursor",
        "limit",
    }
    assert params["limit"]["schema"]["maximum"] == 100
    photo = doc["paths"]["/api/reports/{report_id}/photos/{photo_id}"]["put"]
    kinds = {p["name"]: p for p in photo["parameters"]}["kind"]["schema"]
    assert kinds["$ref"].endswith("/PhotoKind")


async def test_an_empty_body_is_refused_naming_exactly_the_documented_required_fields(
    client, world, doc
):
    await login(client, "admin")
    checked = 0
    for method, path, schema in json_bodies(doc):
        response = await client.request(method, concrete(path), json={}, headers=CSRF)
        required = set(schema.get("required", ()))
        if required:
            assert response.status_code == 422, (method, path, response.text)
            named = {f["field"] for f in response.json()["error"]["fields"]}
            assert named == required, (method, path)
            checked += 1
        else:
            assert response.status_code != 422, (method, path, response.text)
    assert checked >= 4


async def test_every_documented_field_is_validated_as_documented(client, world, doc):
    await login(client, "admin")
    checked = 0
    for method, path, schema in json_bodies(doc):
        for name, prop in schema.get("properties", {}).items():
            body = {name: wrong_value(doc, prop)}
            response = await client.request(method, concrete(path), json=body, headers=CSRF)
            assert response.status_code == 422, (method, path, name, response.text)
            named = {f["field"].split(".")[0] for f in response.json()["error"]["fields"]}
            assert name in named, (method, path, name, response.json())
            checked += 1
    assert checked >= 15


async def test_the_openapi_document_is_public_json(client):
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi")
