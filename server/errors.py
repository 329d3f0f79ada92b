"""One error shape for the whole API: ``{"error": {"code", "message"}}``.

:class:`ApiError` is what every layer raises for a client's mistake; the
handlers in :mod:`server.error_handlers` turn it into JSON under ``/api`` and
into a page elsewhere, so bad input never surfaces as a 500.

Messages are written in English, as the message ids of the ``server`` gettext
domain (``pwa/translations/zh_CN/LC_MESSAGES/server.po`` has the Chinese),
and put into words only when the answer's language is known. A message with
values is a :class:`Msg`, its placeholders (``{name}``) filled after
translation; ``pybabel extract`` finds every message by the calls that take
one (the commands are in :mod:`server.error_text`), and a test fails when one
has no translation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import ValidationError

CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
}

Gettext = Callable[[str], str]


def english(message: str) -> str:
    """The identity translation: message ids are English."""
    return message


def N_(message: str) -> str:
    """Mark ``message`` for the catalog; it is translated when answered."""
    return message


class Msg(str):
    """A message id with its values, put into words in the answer's language.

    It is the English text itself (a ``str``), so code that only compares or
    stores it needs nothing else; :meth:`render` says it in another language.
    A value that is itself a :class:`Msg` (or :class:`Joined`) is translated
    too; anything else is filled in as it is.
    """

    id: str
    params: dict[str, Any]

    def __new__(cls, id: str, /, **params: Any) -> Msg:
        english_text = id.format(**{k: words(v) for k, v in params.items()}) if params else id
        self = super().__new__(cls, english_text)
        self.id = id
        self.params = params
        return self

    def render(self, gettext: Gettext = english) -> str:
        text = gettext(self.id)
        if not self.params:
            return text
        return text.format(**{k: words(v, gettext) for k, v in self.params.items()})

    def __repr__(self) -> str:
        return f"Msg({self.id!r}, **{self.params!r})"


class Joined(str):
    """Messages one after another, with a separator that is translated too."""

    items: list[str]
    sep: str

    def __new__(cls, items: Iterable[str], sep: str = "; ") -> Joined:
        listed = list(items)
        self = super().__new__(cls, sep.join(words(i) for i in listed))
        self.items = listed
        self.sep = sep
        return self

    def render(self, gettext: Gettext = english) -> str:
        return gettext(self.sep).join(words(item, gettext) for item in self.items)


def words(value: Any, gettext: Gettext = english) -> str:
    """``value`` in words: a message translated, anything else as ``str()``."""
    if isinstance(value, Msg | Joined):
        return value.render(gettext)
    return str(value)


def as_msg(message: str) -> Msg | Joined:
    """A message id as a :class:`Msg` (a message already is one)."""
    return message if isinstance(message, Msg | Joined) else Msg(message)


# Separators of joined messages, for the catalog.
SEPARATORS = (N_("; "), N_(", "))


class ApiError(Exception):
    """A client error with a stable machine code and a human message.

    ``message`` is a message id (English) or a :class:`Msg`; ``.message`` is
    the English text, :meth:`text` the text in another language.
    """

    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        self.words = as_msg(message)
        self.status = status
        self.code = code
        self.message = self.words.render()
        self.detail = detail
        super().__init__(self.message)

    def text(self, gettext: Gettext = english) -> str:
        """The message through ``gettext`` (a catalog's), English without one."""
        return self.words.render(gettext)

    def body(self, gettext: Gettext = english) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.text(gettext), **self.detail}}


def invalid(field: str, message: str, *, code: str = "invalid", problem: str = "") -> ApiError:
    """A 422 that names ``field``: ``message`` for people, ``problem`` in ``fields``."""
    said = as_msg(message)
    return ApiError(
        422,
        code,
        Msg("{field}: {message}", field=field, message=said),
        fields=[{"field": field, "message": problem or said.render()}],
    )


def fields_error(problems: Sequence[tuple[str, str]], lead: str | None = None) -> ApiError:
    """One 422 that names each ``(field, problem)``, after ``lead`` if given
    (a message id with a ``{problems}`` placeholder)."""
    fields = [{"field": field, "message": words(message)} for field, message in problems]
    said = Joined(
        Msg("{field}: {message}", field=field, message=as_msg(message))
        for field, message in problems
    )
    return ApiError(422, "invalid", Msg(lead, problems=said) if lead else said, fields=fields)


def validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    """Turn pydantic's errors into one 422 that names each field. Pydantic's
    own words stay English, after a translated lead."""
    return fields_error(
        [
            (prefix + (".".join(str(p) for p in err["loc"]) or "body"), err["msg"])
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ],
        lead=N_("Invalid input: {problems}"),
    )
