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


JSON = {**CSRF, "Content-Type": "application/json"}


async def test_a_body_nested_100000_deep_is_400_before_login(client, world):
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 40_000 + b"1" + b"}" * 40_000):
        response = await client.post("/api/session", content=deep, headers=JSON)
        assert_error(response, 400, "too_deep")
        assert "32" in response.json()["error"]["message"]


async def test_nesting_is_counted_outside_strings_only(client, world):
    from server.api import MAX_DEPTH, nesting_exceeds

    assert nesting_exceeds("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), MAX_DEPTH)
    assert not nesting_exceeds("[" * MAX_DEPTH + "]" * MAX_DEPTH, MAX_DEPTH)
    brackets = '"' + "[{" * 100 + '\\"[[\\\\"'
    assert not nesting_exceeds(f'{{"a": {brackets}, "b": [1]}}', MAX_DEPTH)
    # An escaped backslash before a quote ends the string: what follows counts.
    assert nesting_exceeds('["\\\\", ' + "[" * 40, MAX_DEPTH)
    assert not nesting_exceeds('"' + "[" * 40, MAX_DEPTH)  # unterminated: the parser says so
    # Deep but within the limit reaches the model, which names what is wrong.
    shallow = '{"username": ' + "[" * 31 + "]" * 31 + ', "password": "x"}'
    response = await client.post("/api/session", content=shallow, headers=JSON)
    assert_error(response, 422, "invalid")


async def test_json_that_is_not_utf8_is_400_even_if_another_encoding_parses(client, world):
    for raw in ('{"username": "guard", "password": "x"}'.encode("utf-16"), b'{"username": "\xe9"}'):
        response = await client.post("/api/session", content=raw, headers=JSON)
        assert_error(response, 400, "malformed_json")


async def test_nan_infinity_and_overflowing_numbers_are_400(client, world):
    huge = b'{"n": 1' + b"0" * 5000 + b"}"
    for raw in (b'{"lat": NaN}', b'{"lat": -Infinity}', b'{"lat": 1e400}', huge):
        response = await client.post("/api/session", content=raw, headers=JSON)
        assert_error(response, 400, "malformed_json")


async def test_a_nul_or_a_lone_surrogate_in_any_text_is_422_naming_the_field(client, world):
    for raw, fields in (
        (b'{"username": "guard\\u0000", "password": "x"}', ["username"]),
        (b'{"username": "guard", "password": "\\ud800"}', ["password"]),
        (b'{"username": "\\u0000", "password": "\\u0000"}', ["username", "password"]),
        (b'{"username": "guard", "password": "x", "a\\u0000": 1}', ["body"]),
        (b'{"username": "guard", "password": "x", "extra": [{"b": "\\u0000"}]}', ["extra.0.b"]),
    ):
        response = await client.post("/api/session", content=raw, headers=JSON)
        error = assert_error(response, 422, "invalid")
        assert [f["field"] for f in error["fields"]] == fields
        # In the default language, zh-CN (the field names stay as sent).
        assert "NUL" in error["message"] or "代理字符" in error["message"]


async def test_a_nul_in_a_path_or_query_parameter_is_422_naming_it(client, world):
    from tests.conftest import login

    await login(client, "admin")
    response = await client.put("/api/users/guard%00", json={"role": "guard"}, headers=CSRF)
    assert assert_error(response, 422, "invalid")["fields"][0]["field"] == "username"
    response = await client.get("/api/playbooks", params={"lang": "en\x00"})
    assert assert_error(response, 422, "invalid")["fields"][0]["field"] == "lang"
    response = await client.get("/api/reports", params={"a\x00": "1"})
    assert assert_error(response, 422, "invalid")["fields"][0]["field"] == "query"


async def test_the_nil_uuid_is_422_in_every_id_of_a_path(client, world):
    from tests.conftest import login

    await login(client, "admin")
    nil = "00000000-0000-0000-0000-000000000000"
    for method, path in (
        ("GET", f"/api/reports/{nil}"),
        ("PUT", f"/api/reports/{nil}/photos/{nil}"),
        ("DELETE", f"/api/sites/north/contacts/{nil}"),
        ("DELETE", f"/api/sites/north/channels/{nil}"),
    ):
        response = await client.request(method, path, headers=CSRF)
        error = assert_error(response, 422, "invalid")
        assert error["fields"][0]["message"] == "the nil UUID"
