"""Server messages in the user's language: the ``server`` gettext domain.

Error messages are written in English in the code (see :mod:`server.errors`)
and translated when answered; the Chinese is in
``pwa/translations/zh_CN/LC_MESSAGES/server.po``, read from its source at
first use like the templates' catalog.

Babel's ``pybabel`` brings that catalog up to the code, from the repository's
root: it finds the messages by the calls that take one (:data:`KEYWORDS`), so
a message is a literal there or is marked with ``N_()`` where it is written::

    .venv/bin/pybabel extract --no-default-keywords -k ApiError:3 -k invalid:2 \
        -k Msg -k N_ -k HTTPException:2 -k PhotoError:3 --add-location=file \
        --sort-output -w 100 --project=onsite -o /tmp/server.pot server
    .venv/bin/pybabel update -D server -l zh_CN -d pwa/translations \
        -i /tmp/server.pot --no-fuzzy-matching --ignore-obsolete -w 100

then fill in the Chinese of the new (empty) entries. ``tests/test_server_messages.py``
extracts the same way (Babel's Python API) and fails while a message lacks it.
"""

from __future__ import annotations

import gettext
import io
from functools import cache

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import HTTPConnection, Request

from server.errors import ApiError, Gettext
from server.i18n import request_language
from server.paths import CATALOG_DIR

DOMAIN = "server"
# The languages that need a catalog: message ids are English.
CATALOG_LOCALES = {"zh-CN": "zh_CN"}
# The calls that take a message, and which argument it is, as ``pybabel
# extract -k`` takes them (the command above lists the same).
KEYWORDS = ("ApiError:3", "invalid:2", "Msg", "N_", "HTTPException:2", "PhotoError:3")


def catalog_path(locale: str) -> str:
    return str(CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po")


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled server catalog for ``lang`` (an identity one for English)."""
    locale = CATALOG_LOCALES.get(lang)
    if locale is None:
        return NullTranslations()
    with open(catalog_path(locale), "rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


def gettext_for(lang: str) -> Gettext:
    return translations(lang).gettext


def language_of(conn: HTTPConnection) -> str:
    """The answer's language: the request's, or worked out here for an
    answer given before the language middleware ran."""
    lang = getattr(conn.state, "lang", None)
    if lang is None:
        default = conn.app.state.settings.default_language
        lang = request_language(Request(conn.scope), default)
    return str(lang)


def error_body(conn: HTTPConnection, error: ApiError) -> dict[str, object]:
    """``error`` as JSON, in the language of ``conn``."""
    return error.body(gettext_for(language_of(conn)))
