"""Jinja2 templates with per-request gettext.

The i18n extension is given callables that look the language up on the
request in the template context, so one environment serves every language.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from server.auth import csrf_token, set_csrf_cookie
from server.build import build_id, with_preloads
from server.i18n import LANGUAGES, translations
from server.models import Site, User
from server.paths import TEMPLATE_DIR


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return translations(context["lang"]).gettext(message)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return translations(context["lang"]).ngettext(singular, plural, n)


@jinja2.pass_context
def _localtime(
    context: jinja2.runtime.Context, value: datetime | str | None, fmt: str = "%m-%d %H:%M"
) -> str:
    """A stored (UTC) time in the site's time zone, for people on site; also
    one kept as ISO text in an event's data (a phone's time)."""
    if not value:
        return ""
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        at = value
    tz = ZoneInfo(context["request"].app.state.settings.timezone)
    return at.astimezone(tz).strftime(fmt)


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


async def contacts_version(user: User) -> str:
    """A short hash of the user's sites and their emergency contacts.

    Every logged-in page carries it (``<body data-contacts>``) and app.js
    compares it with the version of the pages the phone kept, so the first
    page opened with signal after a contact is added, changed or removed keeps
    them all again; otherwise a new number would reach the phone only at its
    next app start.

    Why the rows themselves rather than a count and the newest ``updated_at``:
    a contact is changed with a queryset ``update()``, which leaves
    ``auto_now`` alone, so that pair would miss a changed number; and a site
    renamed or joined changes the kept pages too. It is one small query per
    page (a handful of contacts per site), no more than the pages already make.
    """
    rows = await Site.filter(users__id=user.id).values_list(
        "code",
        "name",
        "contacts__id",
        "contacts__name",
        "contacts__phone",
        "contacts__kind",
        "contacts__incident_types",
    )
    text = json.dumps(sorted([str(v) for v in row] for row in rows), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _LoggedInPage(HTMLResponse):
    """A logged-in page, drawn when it is sent: that is where the contacts
    version (a query) can be awaited, so ``render`` stays a plain call."""

    def __init__(self, name: str, context: dict[str, Any], status_code: int) -> None:
        self.template = templates.get_template(name)
        self.context = context
        super().__init__(b"", status_code)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The playbooks' version too: a publish, like a new number, makes the
        # first page opened with signal keep every page again.
        book = self.context["request"].app.state.playbooks
        contacts = await contacts_version(self.context["user"])
        both = f"{contacts}.{book.version}".encode()
        self.context["contacts_version"] = hashlib.sha256(both).hexdigest()[:16]
        self.body = self.render(with_preloads(self.template.render(self.context)))
        self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render page ``name`` in the request's language, with the CSRF token at hand.

    A logged-in page that may be kept (not an error) also carries the
    contacts version of the user's sites (see :func:`contacts_version`).
    """
    lang = request.state.lang
    context.setdefault("user", getattr(request.state, "user", None))
    # ?modulepreload=0 draws the page without its preload links: only for
    # bench/start.py, which measures what they save.
    preload = request.query_params.get("modulepreload") != "0"
    context.update(
        lang=lang,
        csrf_token=csrf_token(request),
        modulepreload=preload,
    )
    response: HTMLResponse
    if context["user"] is not None and status_code < 400:
        response = _LoggedInPage(name, {**context, "request": request}, status_code)
    else:
        # Error pages are drawn at once, as before: they must never fail, and
        # the service worker keeps none of them.
        page = templates.get_template(name).render({**context, "request": request})
        response = HTMLResponse(with_preloads(page), status_code)
    response.headers.setdefault("Cache-Control", "no-cache")
    # The service worker keeps a copy of each page per language, by this.
    response.headers["Content-Language"] = lang
    set_csrf_cookie(request, response)
    return response
