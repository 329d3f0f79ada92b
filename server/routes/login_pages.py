"""The pages around a session: the login form, logging in and out, and the
language switch (offered on the login page, before anyone is logged in)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.auth import Sessions, TooManyAttempts, check_form_csrf, client_address
from server.i18n import LANG_COOKIE, normalise
from server.templating import render


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


routes = [
    Route("/login", login_page, methods=["GET"], include_in_schema=False),
    Route("/login", login_form, methods=["POST"], include_in_schema=False),
    Route("/logout", logout_form, methods=["POST"], include_in_schema=False),
    Route("/lang/{lang}", set_language, methods=["GET"], include_in_schema=False),
]
