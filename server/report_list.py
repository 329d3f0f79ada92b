"""Reading reports: one by id, the API's list with its filters (the export's
too), and the lists the pages show (the inbox, a technician's jobs, my reports).

Only the reports the user may see (:func:`server.access.reports_visible_to`);
the API's list pages newest first by receipt, with a cursor this server made.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from server.access import report_for, reports_visible_to, require_site
from server.action_list import overdue_by_report
from server.context import Context
from server.errors import ApiError
from server.models import Report, ReportStatus, Severity, User
from server.report_shapes import (
    RELATED,
    ReportOut,
    ReportPage,
    ReportSummary,
    report_out,
    summary_fields,
)
from server.schemas import IN_RANGE, Id, Time, parse_report_id
from server.sites import site_by_code


class ReportFilter(BaseModel):
    """Which reports: the filters of the list and the export; times are when
    the server received the report."""

    model_config = ConfigDict(populate_by_name=True)

    status: ReportStatus | None = None
    severity: Severity | None = None
    type: str | None = Field(default=None, max_length=64, description="incident type id")
    site: str | None = Field(default=None, max_length=32, description="site code")
    assignee: str | None = Field(
        default=None, max_length=64, description="'me', or a technician's username"
    )
    from_: Time | None = Field(
        default=None, alias="from", description=f"received at or after ({IN_RANGE})"
    )
    to: Time | None = Field(default=None, description=f"received before ({IN_RANGE})")
    since: Time | None = Field(default=None, description="the same as from")


class ListQuery(ReportFilter):
    """Filters of the report list, and where the page starts; times are when
    the server received the report."""

    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=100)


async def get_report(ctx: Context, user: User, report_id: str) -> ReportOut:
    """The whole report, for someone who may see it."""
    report = await report_for(user, parse_report_id(report_id))
    return await report_out(report, ctx)


def encode_cursor(report: Report) -> str:
    raw = json.dumps({"r": report.received_at.isoformat(), "i": str(report.id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


class _Cursor(BaseModel):
    """Where a page ended: the last report's receipt time and id."""

    model_config = ConfigDict(extra="forbid", strict=True)

    r: str
    i: str


class _Position(BaseModel):
    r: Time
    i: Id


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A cursor from :func:`encode_cursor`, or 400: whatever else it decodes to
    (another JSON, another time or id) is checked before it reaches a query."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = _Cursor.model_validate_json(raw)
        position = _Position.model_validate(data.model_dump())
    except (ValueError, ValidationError):  # binascii.Error is a ValueError
        raise ApiError(400, "bad_cursor", "cursor: not a cursor this server gave out.") from None
    return position.r, position.i


def _narrowed(
    qs: QuerySet[Report],
    *,
    status: str | None,
    severity: Severity | None,
    incident_type: str | None,
) -> QuerySet[Report]:
    """``qs`` with only the status, severity and incident type asked for (each if asked)."""
    if status:
        qs = qs.filter(status=status)
    if severity:
        qs = qs.filter(severity=severity)
    if incident_type:
        qs = qs.filter(incident_type=incident_type)
    return qs


async def filter_reports(user: User, query: ReportFilter) -> QuerySet[Report]:
    """The reports ``user`` may see that match ``query``: what the list pages
    through and the export writes out. A site the user does not belong to is
    403, an unknown one 422, raised here before anything is answered."""
    qs = _narrowed(
        await reports_visible_to(user),
        status=query.status,
        severity=query.severity,
        incident_type=query.type,
    )
    if query.assignee == "me":
        qs = qs.filter(assignee_id=user.id)
    elif query.assignee:
        qs = qs.filter(assignee__username=query.assignee)
    if query.site:
        site = await site_by_code(query.site)
        await require_site(user, site)
        qs = qs.filter(site_id=site.id)
    for start in (query.from_, query.since):
        if start:
            qs = qs.filter(received_at__gte=start)
    if query.to:
        qs = qs.filter(received_at__lt=query.to)
    return qs


async def list_reports(user: User, query: ListQuery) -> ReportPage:
    """The user's visible reports, newest first, a page at a time."""
    qs = await filter_reports(user, query)
    if query.cursor:
        at, last_id = decode_cursor(query.cursor)
        qs = qs.filter(Q(received_at__lt=at) | Q(received_at=at, id__lt=last_id))
    page = await (
        qs.order_by("-received_at", "-id")
        .limit(query.limit + 1)
        .prefetch_related(*RELATED, "steps")
    )
    more = len(page) > query.limit
    page = page[: query.limit]
    return ReportPage(
        reports=[ReportSummary(**summary_fields(r, list(r.steps))) for r in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


# --- the pages' lists ------------------------------------------------------------

# What a row of a page's list shows besides the report itself.
ROW = ("site", "reporter", "assignee")


class InboxQuery(BaseModel):
    """The inbox's filters; anything unknown falls back to showing more, never to an error."""

    status: Literal["open", "all", "new", "acknowledged", "assigned", "repaired", "closed"] = "open"
    severity: Severity | None = None
    type: str | None = None
    site: str | None = None


@dataclass(frozen=True)
class Inbox:
    """The inbox: the unacknowledged on top (newest first), then the rest, and
    how many overdue actions each has."""

    waiting: list[Report]
    rest: list[Report]
    overdue: Counter[uuid.UUID]


async def inbox(user: User, query: InboxQuery, today: date) -> Inbox:
    """The incidents of ``user``'s sites for the supervisor's inbox (100 of each part)."""
    exact = None if query.status in ("open", "all") else query.status
    reports = _narrowed(
        await reports_visible_to(user),
        status=exact,
        severity=query.severity,
        incident_type=query.type,
    )
    if query.status == "open":
        reports = reports.exclude(status=ReportStatus.CLOSED)
    if query.site:
        # Not the API's 403 or 422: a site the inbox does not know lists nothing.
        reports = reports.filter(site__code=query.site)
    waiting = await (
        reports.filter(status=ReportStatus.NEW)
        .order_by("-received_at")
        .limit(100)
        .prefetch_related(*ROW)
    )
    rest = await (
        reports.exclude(status=ReportStatus.NEW)
        .order_by("-received_at", "-id")
        .limit(100)
        .prefetch_related(*ROW)
    )
    overdue = await overdue_by_report([r.id for r in [*waiting, *rest]], today)
    return Inbox(waiting=list(waiting), rest=list(rest), overdue=overdue)


@dataclass(frozen=True)
class Jobs:
    """A technician's jobs: to repair (newest first), then the latest repaired or closed."""

    open: list[Report]
    done: list[Report]


async def jobs(user: User) -> Jobs:
    """The reports assigned to ``user``."""
    mine = Report.filter(assignee_id=user.id)
    open_jobs = await (
        mine.filter(status=ReportStatus.ASSIGNED).order_by("-received_at").prefetch_related(*ROW)
    )
    done = await (
        mine.filter(status__in=[ReportStatus.REPAIRED, ReportStatus.CLOSED])
        .order_by("-received_at")
        .limit(30)
        .prefetch_related(*ROW)
    )
    return Jobs(open=list(open_jobs), done=list(done))


async def my_reports(user: User) -> list[Report]:
    """The latest 100 reports ``user`` may see, newest first."""
    visible = await reports_visible_to(user)
    return list(
        await visible.order_by("-received_at", "-id")
        .limit(100)
        .prefetch_related("site", "reporter")
    )


async def recent_types(user: User, limit: int = 4) -> list[str]:
    """The incident types this user reported most recently, newest first."""
    seen: list[str] = []
    # values_list(flat=True) gives bare values; tortoise types them as tuples.
    rows = cast(
        "list[str]",
        await Report.filter(reporter_id=user.id)
        .order_by("-received_at")
        .limit(50)
        .values_list("incident_type", flat=True),
    )
    for incident_type in rows:
        if incident_type not in seen:
            seen.append(incident_type)
        if len(seen) == limit:
            break
    return seen
