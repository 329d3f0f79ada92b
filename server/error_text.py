"""Server messages in the user's language: the ``server`` gettext domain.

Error messages are written in English in the code (see :mod:`server.errors`)
and translated when answered; the Chinese is in
``pwa/translations/zh_CN/LC_MESSAGES/server.po``, read from its source at
first use like the templates' catalog. ``python -m server.error_text``
extracts the messages from ``server/`` into that catalog and lists those
still without Chinese. Messages are found by the calls that take one
(:data:`KEYWORDS`, read from the code's syntax tree), so a message is a
literal there or is marked with ``N_()`` where it is written.
"""

from __future__ import annotations

import ast
import gettext
import io
import sys
from collections.abc import Iterator
from functools import cache

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import NullTranslations, Translations
from starlette.requests import HTTPConnection, Request

from server.errors import ApiError, Gettext
from server.i18n import request_language
from server.paths import CATALOG_DIR, ROOT

DOMAIN = "server"
# The languages that need a catalog: message ids are English.
CATALOG_LOCALES = {"zh-CN": "zh_CN"}
# The calls that take a message, and which argument it is.
KEYWORDS: dict[str, int] = {
    "ApiError": 3,
    "invalid": 2,
    "Msg": 1,
    "N_": 1,
    "HTTPException": 2,
    "PhotoError": 3,
}
SOURCE_DIR = ROOT / "server"


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


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, ast.expr]]:
    """Each call of a KEYWORDS function in ``tree``, with its message argument."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        index = KEYWORDS.get(name or "")
        if index is not None and len(node.args) >= index:
            yield node, node.args[index - 1]


def scan() -> Iterator[tuple[str | None, str]]:
    """Every message in ``server/``: ``(message id, "file:line")``, or
    ``(None, where)`` for one the catalog cannot hold (an f-string, text put
    together with ``+``): a value belongs in a :class:`~server.errors.Msg`."""
    for path in sorted(SOURCE_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for call, arg in _calls(tree):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield arg.value, where
            elif isinstance(arg, ast.JoinedStr | ast.BinOp):
                yield None, where


def extract() -> Iterator[tuple[str, str]]:
    """Every message id in ``server/`` and where it is (``file:line``)."""
    for msgid, where in scan():
        if msgid:
            yield msgid, where


def update(locale: str = "zh_CN") -> list[str]:
    """Bring the catalog of ``locale`` up to the code: new ids added (empty),
    gone ones dropped. Returns the ids still without a translation."""
    path = catalog_path(locale)
    with open(path, "rb") as fh:
        old = read_po(fh, locale=locale, domain=DOMAIN)
    new = Catalog(
        locale=locale,
        domain=DOMAIN,
        project="onsite",
        fuzzy=False,
        creation_date=old.creation_date,
        revision_date=old.revision_date,
    )
    new.header_comment = old.header_comment
    for msgid, where in extract():
        entry = new.get(msgid)
        file, line = where.rsplit(":", 1)
        if entry is None:
            kept = old.get(msgid)
            new.add(msgid, kept.string if kept else "", locations=[(file, int(line))])
        else:
            entry.locations.append((file, int(line)))
    with open(path, "wb") as fh:
        # Files without line numbers: an edit elsewhere in a file changes nothing here.
        write_po(fh, new, sort_output=True, width=100, include_lineno=False)
    return [str(m.id) for m in new if m.id and not m.string]


if __name__ == "__main__":
    missing = update()
    for msgid in missing:
        print("MISSING:", msgid)
    sys.exit(1 if missing else 0)
