"""Shapes that several parts of the API answer with, and the result of a write.

Answers are pydantic models: the service builds one, the route sends it, and
``/api/openapi.json`` documents it from the same class.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)

from server.errors import Msg, invalid
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


# --- what clients send: times and ids -----------------------------------------

# Every time a client sends lies in these years, filters included: anything
# else is a typo (year 0001 or 9999), and would overflow on its way to UTC.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
# A time the phone says something happened (occurred, ticked, sent) is within
# these bounds of the server's clock: older is a typo or a phone whose clock
# was reset (1970), later a phone's clock that runs ahead (they drift a little).
MAX_AGE = timedelta(days=365)
CLOCK_SKEW = timedelta(minutes=10)

RECENT = (
    f"no more than {MAX_AGE.days} days before the server's clock, "
    f"nor {CLOCK_SKEW.seconds // 60} minutes after it"
)
IN_RANGE = f"in the years {EARLIEST.year} to {LATEST.year - 1}"


def _in_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"must be {IN_RANGE}")
    return utc


# A time with its zone, in UTC once parsed.
Time = Annotated[AwareDatetime, AfterValidator(_in_range)]


def check_recent(value: datetime, field: str, now: datetime) -> None:
    """A 422 naming ``field`` unless ``value`` is RECENT by the clock ``now``."""
    if value > now + CLOCK_SKEW:
        raise invalid(field, "is in the future; check the phone's clock.", problem="in the future")
    if value < now - MAX_AGE:
        raise invalid(
            field,
            Msg(
                "is more than {days} days ago; check the date and the phone's clock.",
                days=MAX_AGE.days,
            ),
            problem="too long ago",
        )


NIL = uuid.UUID(int=0)


def _not_nil(value: uuid.UUID) -> uuid.UUID:
    if value == NIL:
        raise ValueError("the nil UUID is not an id")
    return value


# An id made by a client: any UUID but the nil one.
Id = Annotated[uuid.UUID, AfterValidator(_not_nil)]


def parse_id(raw: str, field: str) -> uuid.UUID:
    """``raw`` (a path's id) as a UUID, or a 422 naming ``field``."""
    try:
        value = uuid.UUID(raw)
    except ValueError:
        raise invalid(field, "is not a UUID.", problem="not a UUID") from None
    if value == NIL:
        raise invalid(field, "the nil UUID is not an id.", problem="the nil UUID")
    return value


def parse_report_id(raw: str) -> uuid.UUID:
    """A report's id from a path, or a 422 naming ``report_id``."""
    return parse_id(raw, "report_id")


# --- answers ------------------------------------------------------------------


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
