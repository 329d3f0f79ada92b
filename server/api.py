"""JSON API routes: one declaration gives the guard, the parsing and the docs.

An :class:`ApiRoute` names its handler, who may call it, the pydantic model
of its body and of its query, and the model of each answer. The same models
validate the request and write ``/api/openapi.json`` (see
:mod:`server.openapi`), so the documentation cannot drift from what the
server accepts. The handler is called with what was checked and parsed:
``handler(request, user=..., body=..., query=...)``, each only when declared.

What no model should have to say is checked here, for every route: a body is
UTF-8 JSON nested at most :data:`MAX_DEPTH` deep; no text anywhere (a body's
strings and keys, the query, the path) holds a NUL or a lone surrogate, which
no database stores; an id in the path (``{…_id}``) is a UUID, not the nil one.
"""

from __future__ import annotations

import inspect
import json
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.access import current_user, require_role
from server.errors import N_, ApiError, Msg, fields_error, invalid, validation_error
from server.models import Role
from server.schemas import Written, parse_id
from server.settings import Settings

MAX_JSON_BYTES = 256 * 1024
# No body this API takes nests half as deep; a deeper one is refused before
# it is parsed (100,000 levels would exhaust the parser's recursion).
MAX_DEPTH = 32
# The longest text a path parameter may be: that of the column it is looked
# up in (Site.code, User.username). A longer one can match nothing, and the
# ORM refuses to look it up at all.
PATH_MAX_LENGTH = {"code": 32, "username": 64}

M = TypeVar("M", bound=BaseModel)
Method = Literal["GET", "PUT", "POST", "DELETE"]
Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class Raw:
    """A body or an answer that is not JSON (an image), by its media type."""

    media_type: str
    description: str = ""
    # For request bodies: the most bytes accepted, from the settings.
    limit: Callable[[Settings], int] | None = None
    # What its data is, for a structured text (YAML); None: bytes.
    schema: dict[str, Any] | None = None


# An answer is documented by a text, a model (its docstring says what it
# is), a model with a text, or a Raw.
Answer = str | type[BaseModel] | tuple[type[BaseModel], str] | Raw


class ApiRoute(Route):
    """A route under ``/api`` whose checks and documentation are declared."""

    def __init__(
        self,
        method: Method,
        path: str,
        handler: Handler,
        *,
        responses: Mapping[int, Answer],
        login: bool = True,
        roles: Iterable[Role] = (),
        body: type[BaseModel] | Raw | None = None,
        query: type[BaseModel] | None = None,
    ) -> None:
        self.handler = handler
        self.method = method
        self.login = login or bool(roles)
        self.roles = frozenset(roles)
        self.body = body
        self.query = query
        self.responses = dict(responses)
        if "{" in path:  # a path parameter is checked (see check_path)
            self.responses.setdefault(422, "A path parameter is invalid.")
        accepted = set(inspect.signature(handler).parameters) - {"request"}
        declared = {"user"} if self.login else set()
        declared |= {"body"} if body is not None else set()
        declared |= {"query"} if query is not None else set()
        if accepted != declared:
            raise TypeError(f"{handler.__name__} takes {accepted}, but {declared} is declared")
        super().__init__(path, self.call, methods=[method], name=handler.__name__)

    async def call(self, request: Request) -> Response:
        arguments: dict[str, Any] = {}
        if self.login:
            user = current_user(request)
            if self.roles:
                require_role(user, self.roles)
            arguments["user"] = user
        check_path(request.path_params)
        if self.query is not None:  # before the body: a bad query needs no upload
            check_query(request.query_params.multi_items())
            arguments["query"] = validate(self.query, dict(request.query_params))
        if isinstance(self.body, Raw):
            limit = self.body.limit(request.app.state.settings) if self.body.limit else None
            arguments["body"] = await read_body(request, limit or MAX_JSON_BYTES)
        elif self.body is not None:
            arguments["body"] = validate(self.body, await read_json(request))
        return await self.handler(request, **arguments)

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.handler) or "").split("\n", 1)[0].strip()

    @property
    def description(self) -> str:
        return (inspect.getdoc(self.handler) or "").partition("\n")[2].strip()


def validate(model: type[M], data: Any) -> M:
    """``data`` as ``model``, or a 422 that names each field at fault."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes."""
    too_large = ApiError(413, "too_large", Msg("The body is over {size}.", size=_size(limit)))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise too_large
    return bytes(buf)


async def read_json(request: Request) -> Any:
    """The body as JSON, or a 400/413/415/422 that says what is wrong."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    raw = await read_body(request, MAX_JSON_BYTES)
    if not raw.strip():
        return {}  # no body: an empty object, so a model says what is missing
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """UTF-8 JSON, at most MAX_DEPTH deep, with text a database can store."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "malformed_json", "The body is not UTF-8 text.") from None
    if nesting_exceeds(text, MAX_DEPTH):
        raise ApiError(
            400, "too_deep", Msg("The body is nested deeper than {depth} levels.", depth=MAX_DEPTH)
        )
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise ApiError(
            400, "malformed_json", Msg("The body is not valid JSON: {reason}", reason=str(exc))
        ) from None
    check_json_text(data)
    return data


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{literal[:20]} is too large a number")
    return value


_STRUCTURE = re.compile(r'["\[\]{}]')


def nesting_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` arrays and objects at
    once, read in one pass without parsing (strings are skipped)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the usual body: too few brackets to be too deep
    depth, at = 0, 0
    while found := _STRUCTURE.search(text, at):
        char, at = found.group(), found.end()
        if char == '"':
            at = _string_end(text, at)
            if at < 0:
                return False  # unterminated: the parser says so
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _string_end(text: str, at: int) -> int:
    """Just past the quote that ends the string whose content starts at ``at``."""
    while (quote := text.find('"', at)) >= 0:
        backslashes = 0
        while text[quote - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return quote + 1
        at = quote + 1
    return -1


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None: PostgreSQL refuses NUL
    and no UTF-8 encodes a lone surrogate (JSON's "\\ud800")."""
    if "\x00" in value:
        return N_("contains a NUL character (\\u0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return N_("contains a lone surrogate, which is not Unicode text")
    return None


def check_json_text(data: Any) -> None:
    """A 422 naming each string or key of ``data`` that is not storable text."""
    problems: list[tuple[str, str]] = []
    queue: deque[tuple[str, Any]] = deque([("", data)])
    while queue:
        where, value = queue.popleft()
        if isinstance(value, str):
            if problem := text_problem(value):
                problems.append((where or "body", problem))
        elif isinstance(value, dict):
            for key, item in value.items():
                if problem := text_problem(key):
                    problems.append((where or "body", Msg("a key {problem}", problem=Msg(problem))))
                else:
                    queue.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            queue.extend((f"{where}.{i}" if where else str(i), v) for i, v in enumerate(value))
    if problems:
        raise fields_error(problems)


def check_query(items: Iterable[tuple[str, str]]) -> None:
    """A 422 naming each query parameter that is not storable text."""
    problems = []
    for name, value in items:
        if problem := text_problem(name):
            problems.append(("query", Msg("a parameter's name {problem}", problem=Msg(problem))))
        elif problem := text_problem(value):
            problems.append((name, Msg(problem)))
    if problems:
        raise fields_error(problems)


def check_path(params: Mapping[str, Any]) -> None:
    """A 422 naming the first path parameter that is not storable text, is
    longer than :data:`PATH_MAX_LENGTH`, or is an id (``…_id``) that is not a
    UUID or is the nil UUID."""
    for name, value in params.items():
        if not isinstance(value, str):
            continue  # a number, converted by the route
        if problem := text_problem(value):
            raise invalid(name, Msg("{problem}.", problem=Msg(problem)), problem=problem)
        if len(value) > PATH_MAX_LENGTH.get(name, len(value)):
            raise invalid(name, Msg("at most {n} characters.", n=PATH_MAX_LENGTH[name]))
        if name.endswith("_id"):
            parse_id(value, name)


def _size(limit: int) -> str:
    if limit >= 1_000_000:
        return Msg("{n} MB", n=limit // 1_000_000)
    return Msg("{n} bytes", n=limit)


def reply(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A model as the JSON answer."""
    return Response(
        model.model_dump_json(),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def written(result: Written[Any], location: str | None = None) -> Response:
    """The answer to an idempotent write: 201 when it made something, else 200."""
    headers = {"Location": location} if result.created and location else None
    return reply(result.body, 201 if result.created else 200, headers)
