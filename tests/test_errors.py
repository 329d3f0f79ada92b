"""Bad input gets a clear 4xx in one JSON shape, never a 500."""

from __future__ import annotations

from tests.conftest import CSRF


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


async def test_malformed_json_is_400(client, world):
    response = await client.post(
        "/api/session",
        content=b'{"username": "guard",',
        headers={**CSRF, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "malformed_json")


async def test_a_body_that_is_not_utf8_is_400(client, world):
    response = await client.post(
        "/api/session",
        content=b"\xff\xfe\x00",
        headers={**CSRF, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "malformed_json")


async def test_missing_fields_are_422_naming_the_field(client, world):
    response = await client.post("/api/session", json={"username": "guard"}, headers=CSRF)
    error = assert_error(response, 422, "invalid")
    assert "password" in error["message"]
    assert error["fields"][0]["field"] == "password"


async def test_wrong_types_are_422(client, world):
    response = await client.post(
        "/api/session", json={"username": ["guard"], "password": 5}, headers=CSRF
    )
    error = assert_error(response, 422, "invalid")
    assert {f["field"] for f in error["fields"]} == {"username", "password"}


async def test_a_json_array_instead_of_an_object_is_422(client, world):
    response = await client.post("/api/session", json=["guard", "pw"], headers=CSRF)
    assert_error(response, 422, "invalid")


async def test_a_form_body_on_a_json_endpoint_is_415(client, world):
    response = await client.post(
        "/api/session", data={"username": "guard", "password": "x"}, headers=CSRF
    )
    assert_error(response, 415, "unsupported_media_type")


async def test_an_oversized_json_body_is_413(client, world):
    response = await client.post(
        "/api/session", json={"username": "g", "password": "x" * 300_000}, headers=CSRF
    )
    assert_error(response, 413, "too_large")


async def test_an_unknown_api_path_is_a_json_404(client):
    assert_error(await client.get("/api/nothing-here"), 404, "not_found")


async def test_a_wrong_method_is_a_json_405(client):
    assert_error(await client.put("/api/session", headers=CSRF), 405, "method_not_allowed")


async def test_an_unknown_page_is_an_html_404(client):
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "找不到这个页面" in response.text
