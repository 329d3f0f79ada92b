"""JSON API routes: one declaration gives the guard, the parsing and the docs.

An :class:`ApiRoute` names its handler, who may call it, the pydantic model
of its body and of its query, and the model of each answer. The same models
validate the request and write ``/api/openapi.json`` (see
:mod:`server.openapi`), so the documentation cannot drift from what the
server accepts. The handler is called with what was checked and parsed:
``handler(request, user=..., body=..., query=...)``, each only when declared.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.auth import current_user, require_role
from server.errors import ApiError, validation_error
from server.models import Role
from server.schemas import Written
from server.settings import Settings

MAX_JSON_BYTES = 256 * 1024

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
        if isinstance(self.body, Raw):
            limit = self.body.limit(request.app.state.settings) if self.body.limit else None
            arguments["body"] = await read_body(request, limit or MAX_JSON_BYTES)
        elif self.body is not None:
            arguments["body"] = validate(self.body, await read_json(request))
        if self.query is not None:
            arguments["query"] = validate(self.query, dict(request.query_params))
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
    too_large = ApiError(413, "too_large", f"The body is over {_size(limit)}.")
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
    """The body as JSON, or a 400/413/415 that says what is wrong."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    raw = await read_body(request, MAX_JSON_BYTES)
    if not raw.strip():
        return {}  # no body: an empty object, so a model says what is missing
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}") from None


def _size(limit: int) -> str:
    return f"{limit // 1_000_000} MB" if limit >= 1_000_000 else f"{limit} bytes"


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
