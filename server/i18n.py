"""Languages: zh-CN by default, English from a Babel gettext catalog.

Message ids are the Chinese text itself, so zh-CN needs no catalog. The
English catalog is read from its ``.po`` source at start-up and compiled in
memory, so a fresh clone works without a build step.
"""

from __future__ import annotations

import gettext
import io
from functools import cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from server.paths import CATALOG_DIR

# Message ids are the Chinese text itself: zh-CN is the language of the source.
SOURCE_LANGUAGE = "zh-CN"
LANGUAGES = {SOURCE_LANGUAGE: "中文", "en": "English"}
LANG_COOKIE = "onsite_lang"


def normalise(value: str | None) -> str | None:
    """Map what browsers and users send (``zh``, ``en-GB``, ``zh_CN``) to a supported code."""
    if not value:
        return None
    value = value.strip().replace("_", "-").lower()
    if value.startswith("zh"):
        return SOURCE_LANGUAGE
    if value.startswith("en"):
        return "en"
    return None


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog for ``lang`` (an identity one for zh-CN)."""
    if lang == SOURCE_LANGUAGE:
        return NullTranslations()
    po_path = CATALOG_DIR / lang / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=lang.replace("-", "_"))
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def request_language(request: Request, default: str) -> str:
    """The page language: ``?lang=``, then the cookie, then the user's choice, then
    ``default`` (the setting, already one of LANGUAGES)."""
    for candidate in (
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        getattr(getattr(request.state, "user", None), "language", None),
    ):
        lang = normalise(candidate)
        if lang:
            return lang
    return default


class LanguageMiddleware:
    """Sets ``request.state.lang`` for the templates and the API."""

    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            scope.setdefault("state", {})["lang"] = request_language(request, self.default)
        await self.app(scope, receive, send)
