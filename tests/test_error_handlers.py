"""Failures become JSON under /api and an escaped page elsewhere, never raw HTML."""

from __future__ import annotations

from starlette.requests import Request

from server.error_handlers import api_error_handler, server_error_handler
from server.errors import ApiError

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def request_for(app, path: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "app": app,
        "state": {},
        "scheme": "http",
        "server": ("testserver", 80),
    }
    return Request(scope)


async def test_a_message_on_an_html_error_page_is_escaped(app):
    response = await api_error_handler(
        request_for(app, "/reports/x"), ApiError(403, "forbidden", HOSTILE)
    )
    page = response.body.decode()
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page


async def test_the_same_error_under_api_is_json_with_the_message_as_it_was(app):
    response = await api_error_handler(
        request_for(app, "/api/reports/x"), ApiError(403, "forbidden", HOSTILE)
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert b"<script>" in response.body  # JSON is data, not markup: the client escapes it


async def test_an_unexpected_failure_on_a_page_is_a_500_page_in_the_default_language(app):
    response = await server_error_handler(request_for(app, "/"), RuntimeError(HOSTILE))
    page = response.body.decode()
    assert response.status_code == 500
    assert "出错了" in page
    assert HOSTILE not in page  # the exception's text is logged, never shown


async def test_an_unknown_page_is_an_html_404_with_the_path_escaped(client):
    response = await client.get("/<b>bold</b>")
    assert response.status_code == 404
    assert "<b>bold</b>" not in response.text
