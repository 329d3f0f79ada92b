"""The app's shell, what a phone installs and keeps for offline use: the
manifest, the service worker and its precache list, and the offline and
outbox pages (the outbox's list itself lives on the phone)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from server.build import build_id, service_worker_script, static_assets
from server.paths import PWA_DIR
from server.templating import render

# Pages every logged-in phone keeps, besides each playbook guide and report flow.
# /contacts (通讯录): the numbers to call are most needed where there is no signal.
SHELL_PAGES = ("/", "/new", "/reports", "/outbox", "/playbooks", "/me", "/contacts")


async def manifest(request: Request) -> Response:
    return FileResponse(
        PWA_DIR / "manifest.webmanifest",
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


async def service_worker(request: Request) -> Response:
    # Served from the root so that its scope covers every page; never cached
    # by HTTP so that an update is seen at the next navigation. The build id
    # is written in, so the script's bytes change whenever the app does.
    return Response(
        service_worker_script(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


async def precache_list(request: Request) -> Response:
    """What a phone keeps for offline use: the build's assets and the pages."""
    incidents = [i.id for i in request.app.state.playbooks.incidents()]
    pages = [
        *SHELL_PAGES,
        *(f"/playbooks/{i}" for i in incidents),
        *(f"/report/{i}" for i in incidents),
        "/api/playbooks",
    ]
    return JSONResponse(
        {"version": build_id(), "assets": [*static_assets(), "/offline"], "pages": pages},
        headers={"Cache-Control": "no-store"},
    )


async def offline_page(request: Request) -> Response:
    return render(request, "offline.html")


async def outbox_page(request: Request) -> Response:
    # Served without a session too: a guard whose login expired must still
    # see what waits on the phone (the list itself lives on the phone).
    return render(request, "outbox.html")


routes = [
    Route("/manifest.webmanifest", manifest, methods=["GET"], include_in_schema=False),
    Route("/sw.js", service_worker, methods=["GET"], include_in_schema=False),
    Route("/sw/precache.json", precache_list, methods=["GET"], include_in_schema=False),
    Route("/offline", offline_page, methods=["GET"], include_in_schema=False),
    Route("/outbox", outbox_page, methods=["GET"], include_in_schema=False),
]
