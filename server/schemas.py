"""Shapes that several parts of the API answer with, and the result of a write.

Answers are pydantic models: the service builds one, the route sends it, and
``/api/openapi.json`` documents it from the same class.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from server.models import Site, User

M = TypeVar("M", bound=BaseModel)


def iso(value: datetime | None) -> str | None:
    """UTC with milliseconds and a Z: what JavaScript dates carry."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    PlainSerializer(iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Shape(BaseModel):
    """An answer: every field is always there (null when unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(Shape):
    """Someone on the staff, as colleagues see them."""

    username: str
    display_name: str

    @classmethod
    def of(cls, user: User | None) -> Person | None:
        return None if user is None else cls(username=user.username, display_name=user.display_name)


class SiteRef(Shape):
    """A site, by its code and name."""

    code: str
    name: str

    @classmethod
    def of(cls, site: Site) -> SiteRef:
        return cls(code=site.code, name=site.name)


class FieldProblem(Shape):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem] | None = None


class ErrorOut(BaseModel):
    """An error: a stable code for programs, a message for people."""

    error: ErrorDetail


@dataclass(frozen=True)
class Written(Generic[M]):
    """What an idempotent write answers: the resource, and whether it is new."""

    body: M
    created: bool = False
