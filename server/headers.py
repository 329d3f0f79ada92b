"""Security headers on every answer: a strict Content-Security-Policy (the
templates' only inline scripts are JSON data, which a policy does not run),
no sniffing, no framing, no referrer to other sites, HSTS over https, and
``Cache-Control: no-store`` on API answers that do not set their own. Scripts
and styles get no sniffing (and HSTS) only: the page's policy governs them.

A pure ASGI middleware: it only adds headers to the start of a response, so
streamed answers (the live stream, photos) pass through untouched.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Photos the phone shows before they are sent are blob: URLs; the charts are
# inline SVG; pushes and the outbox talk only to this origin.
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
ALWAYS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    # The camera comes through a file input and needs no permission; the
    # location of a report does.
    "permissions-policy": (
        "geolocation=(self), camera=(self), microphone=(), payment=(), usb=(), interest-cohort=()"
    ),
}
HSTS = "max-age=31536000"
# Scripts and styles are subresources: a policy on them is never enforced
# (the page's is), so they carry only what applies to them. On a slow link
# the ~0.6 KB a response saves is time: the home page loads a dozen of them.
SUBRESOURCE = {"x-content-type-options": "nosniff"}
SUBRESOURCE_SUFFIXES = (".js", ".mjs", ".css")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")
        subresource = scope["path"].startswith("/static/") and scope["path"].endswith(
            SUBRESOURCE_SUFFIXES
        )
        always = SUBRESOURCE if subresource else ALWAYS
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in always.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("strict-transport-security", HSTS)
                if api:
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)
