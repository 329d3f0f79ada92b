"""The pages of the shell: login, logout, language, me, outbox, offline,
the manifest, and the service worker with its precache list."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from server import alert_channels, sites
from server.auth import Sessions, TooManyAttempts, check_form_csrf, client_address
from server.build import build_id, service_worker_script, static_assets
from server.i18n import LANG_COOKIE, normalise
from server.paths import PWA_DIR
from server.templating import render

# Pages every logged-in phone keeps, besides each playbook guide and report flow.
# /contacts (通讯录): the numbers to call are most needed where there is no signal.
SHELL_PAGES = ("/", "/new", "/reports", "/outbox", "/playbooks", "/me", "/contacts")


def safe_next(target: str | None) -> str:
    """Only same-site paths, so a login link cannot send a guard elsewhere."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    if request.state.user is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return render(
        request,
        "login.html",
        error=None,
        username="",
        next=safe_next(request.query_params.get("next")),
    )


async def login_form(request: Request) -> Response:
    form = await request.form()
    check_form_csrf(request, form.get("csrf_token"))
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    sessions: Sessions = request.app.state.sessions
    page = {"username": username, "next": target}
    try:
        user = (
            await sessions.logins.authenticate(username, password, client_address(request))
            if username and password
            else None
        )
    except TooManyAttempts as exc:
        refused = render(
            request, "login.html", status_code=429, error=exc.code, minutes=exc.minutes, **page
        )
        refused.headers.update(exc.headers)
        return refused
    if user is None:
        return render(request, "login.html", status_code=401, error="bad_credentials", **page)
    response = RedirectResponse(target, status_code=303)
    await sessions.start(request, response, user)
    return response


async def logout_form(request: Request) -> Response:
    form = await request.form()
    check_form_csrf(request, form.get("csrf_token"))
    response = RedirectResponse("/login", status_code=303)
    await request.app.state.sessions.end(request, response)
    return response


async def set_language(request: Request) -> Response:
    lang = normalise(request.path_params["lang"]) or request.app.state.settings.default_language
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


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


async def me_page(request: Request) -> Response:
    """The user's sites, and how they are alerted: this device's Web Push and,
    for supervisors and admins, the group robots their sites' alerts go to;
    and how many other devices are logged in, to log them out."""
    user = request.state.user
    if user is None:
        return RedirectResponse("/login?next=/me", status_code=303)
    sessions: Sessions = request.app.state.sessions
    return render(
        request,
        "me.html",
        sites=await sites.member_sites(user),
        robots=await alert_channels.alerting(user),
        other_sessions=await sessions.count_others(request.state.session),
    )


async def outbox_page(request: Request) -> Response:
    # Served without a session too: a guard whose login expired must still
    # see what waits on the phone (the list itself lives on the phone).
    return render(request, "outbox.html")


routes = [
    Route("/login", login_page, methods=["GET"], include_in_schema=False),
    Route("/login", login_form, methods=["POST"], include_in_schema=False),
    Route("/logout", logout_form, methods=["POST"], include_in_schema=False),
    Route("/lang/{lang}", set_language, methods=["GET"], include_in_schema=False),
    Route("/manifest.webmanifest", manifest, methods=["GET"], include_in_schema=False),
    Route("/sw.js", service_worker, methods=["GET"], include_in_schema=False),
    Route("/sw/precache.json", precache_list, methods=["GET"], include_in_schema=False),
    Route("/offline", offline_page, methods=["GET"], include_in_schema=False),
    Route("/me", me_page, methods=["GET"], include_in_schema=False),
    Route("/outbox", outbox_page, methods=["GET"], include_in_schema=False),
]
