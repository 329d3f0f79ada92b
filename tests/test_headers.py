"""Security headers on every answer (issue 16, item 11)."""

from __future__ import annotations

import pytest

from server.headers import CSP
from tests.conftest import login


@pytest.mark.parametrize(
    "path", ["/login", "/", "/api/me", "/api/openapi.json", "/static/icons/icon.svg", "/sw.js"]
)
async def test_every_answer_carries_the_policy_and_its_companions(client, world, path):
    await login(client, "guard")
    response = await client.get(path)
    assert response.status_code in (200, 303), (path, response.status_code)
    headers = response.headers
    assert headers["content-security-policy"] == CSP
    for part in (
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ):
        assert part in CSP
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"
    assert "geolocation=(self)" in headers["permissions-policy"]
    assert "strict-transport-security" not in headers  # plain http: HSTS means nothing


@pytest.mark.parametrize("path", ["/static/css/app.css", "/static/js/app.js"])
async def test_scripts_and_styles_carry_only_what_applies_to_them(client, world, path):
    """A policy on a subresource is never enforced (the page's is, and the
    service worker at /sw.js keeps its own): its bytes would only slow a
    weak link."""
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    for name in ("content-security-policy", "permissions-policy", "x-frame-options"):
        assert name not in response.headers, name


async def test_api_answers_are_never_cached_and_errors_carry_the_headers_too(client, world):
    me = await client.get("/api/me")  # 401
    assert me.status_code == 401
    assert me.headers["cache-control"] == "no-store"
    assert me.headers["content-security-policy"] == CSP
    await login(client, "guard")
    listed = await client.get("/api/reports")
    assert listed.headers["cache-control"] == "no-store"
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404 and missing.headers["x-frame-options"] == "DENY"


async def test_hsts_over_https(app, world):
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://onsite.example") as c:
        response = await c.get("/login")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_an_html_error_page_escapes_what_it_shows(client, world):
    await login(client, "guard")
    response = await client.get(
        "/reports/<script>alert(1)</script>", headers={"Accept": "text/html"}
    )
    assert response.status_code in (404, 422)
    assert "<script>alert(1)</script>" not in response.text


@pytest.mark.parametrize(
    "path", ["/?type=%00", "/?site=%00", "/admin/users/gu%00ard", "/admin/sites/no%00rth", "/%00"]
)
async def test_a_page_address_with_a_nul_is_a_400_not_a_500(client, world, path):
    await login(client, "admin")
    response = await client.get(path)
    assert response.status_code == 400, response.text
    assert "NUL" in response.text
    assert response.headers["content-security-policy"] == CSP
