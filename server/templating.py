"""Jinja2 templates with per-request gettext.

The i18n extension is given callables that look the language up on the
request in the template context, so one environment serves every language.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from server.auth import csrf_token, set_csrf_cookie
from server.build import build_id
from server.i18n import LANGUAGES, translations
from server.paths import TEMPLATE_DIR


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return translations(context["lang"]).gettext(message)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return translations(context["lang"]).ngettext(singular, plural, n)


@jinja2.pass_context
def _localtime(
    context: jinja2.runtime.Context, value: datetime | None, fmt: str = "%m-%d %H:%M"
) -> str:
    """A stored (UTC) time in the site's time zone, for people on site."""
    if value is None:
        return ""
    tz = ZoneInfo(context["request"].app.state.settings.timezone)
    return value.astimezone(tz).strftime(fmt)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["localtime"] = _localtime
    env.globals["languages"] = LANGUAGES
    env.globals["timedelta"] = timedelta
    env.globals["version"] = build_id()
    return env


templates = Jinja2Templates(env=_environment())


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render page ``name`` in the request's language, with the CSRF token at hand."""
    lang = request.state.lang
    context.setdefault("user", getattr(request.state, "user", None))
    context.update(lang=lang, csrf_token=csrf_token(request))
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.setdefault("Cache-Control", "no-cache")
    set_csrf_cookie(request, response)
    return response
