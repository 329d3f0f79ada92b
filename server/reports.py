"""Reports: validation, idempotent writes by the phone's ids, who sees what.

A report is identified by a UUID made on the phone, so a resend after a lost
answer is safe. What the guard entered is hashed; the same id with the same
hash is the same report (200, nothing changes), with another hash a conflict
(409). Transport fields (the phone's send time, its playbook version) are
recorded but never make a resend a conflict, and ticked steps are each their
own idempotent write, merged by step index.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from server.auth import require_site, site_ids
from server.errors import ApiError
from server.models import Event, Photo, Report, ReportStatus, ReportStep, Role, Severity, Site, User
from server.playbooks import Library

# Phones' clocks drift; beyond this a time "from the future" is an error.
CLOCK_SKEW = timedelta(minutes=10)
MAX_NOTES = 10_000


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(default="", max_length=500)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _lat_and_lng_together(self) -> LocationIn:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng come together")
        return self


class StepIn(BaseModel):
    index: int = Field(ge=0, le=500)
    checked_at: AwareDatetime


class ReportIn(BaseModel):
    """What the phone sends to create a report."""

    # Newer phones may send fields this server does not know yet: ignore
    # them rather than refuse a report from the field.
    model_config = ConfigDict(extra="ignore")

    site: str = Field(min_length=1, max_length=32)
    incident_type: str = Field(min_length=1, max_length=64)
    severity: Severity | None = None
    occurred_at: AwareDatetime
    client_sent_at: AwareDatetime | None = None
    playbook_version: str | None = Field(default=None, max_length=32)
    location: LocationIn = Field(default_factory=LocationIn)
    notes: str = Field(default="", max_length=MAX_NOTES)
    steps: list[StepIn] = Field(default_factory=list, max_length=500)


class StepTickIn(BaseModel):
    checked_at: AwareDatetime


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return _utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _not_in_future(value: datetime, field: str, now: datetime) -> None:
    if value > now + CLOCK_SKEW:
        raise ApiError(
            422,
            "invalid",
            f"{field}: is in the future; check the phone's clock.",
            fields=[{"field": field, "message": "in the future"}],
        )


def content_hash(body: ReportIn, severity: Severity) -> str:
    """A hash of what the guard entered: the identity of a report's content."""
    loc = body.location
    content = {
        "site": body.site,
        "incident_type": body.incident_type,
        "severity": severity.value,
        # Millisecond precision: what JavaScript dates carry.
        "occurred_at": _iso(body.occurred_at),
        "location": [loc.text.strip(), loc.lat, loc.lng, loc.accuracy_m],
        "notes": body.notes,
    }
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_report_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(422, "invalid", "The report id is not a UUID.") from None


# --- who sees what ----------------------------------------------------------


async def visible_reports(user: User) -> QuerySet[Report]:
    """The reports ``user`` may see: own ones, assigned ones, or their sites'."""
    if user.role == Role.ADMIN:
        return Report.all()
    if user.role == Role.SUPERVISOR:
        return Report.filter(site_id__in=await site_ids(user))
    if user.role == Role.TECHNICIAN:
        return Report.filter(Q(reporter_id=user.id) | Q(assignee_id=user.id))
    return Report.filter(reporter_id=user.id)


async def can_see(user: User, report: Report) -> bool:
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.SUPERVISOR:
        return report.site_id in await site_ids(user)  # type: ignore[attr-defined]
    mine = report.reporter_id == user.id  # type: ignore[attr-defined]
    if user.role == Role.TECHNICIAN:
        return mine or report.assignee_id == user.id  # type: ignore[attr-defined]
    return mine


async def get_visible(user: User, report_id: uuid.UUID) -> Report:
    """The report, or 404 if there is none, 403 if the user may not see it."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise ApiError(404, "not_found", "No such report.")
    if not await can_see(user, report):
        raise ApiError(403, "forbidden", "This report is not yours to see.")
    return report


# --- writes -----------------------------------------------------------------


def _check_steps(steps: list[StepIn], handling_count: int, now: datetime) -> None:
    seen: set[int] = set()
    for i, step in enumerate(steps):
        if step.index >= handling_count:
            raise ApiError(
                422,
                "invalid",
                f"steps.{i}.index: this playbook has {handling_count} steps (0 to "
                f"{handling_count - 1}).",
                fields=[{"field": f"steps.{i}.index", "message": "no such step"}],
            )
        if step.index in seen:
            raise ApiError(422, "invalid", f"steps.{i}.index: step {step.index} is given twice.")
        seen.add(step.index)
        _not_in_future(step.checked_at, f"steps.{i}.checked_at", now)


def _same_time(a: datetime, b: datetime) -> bool:
    return abs(_utc(a) - _utc(b)) < timedelta(milliseconds=1)


async def _merge_steps(report: Report, steps: list[StepIn], user: User) -> bool:
    """Add the steps not yet recorded; 409 if one was recorded at another time.

    Every conflict is found before anything is written, so a 409 stores nothing.
    """
    existing = {s.step_index: s for s in await ReportStep.filter(report_id=report.id)}
    new = []
    for step in steps:
        found = existing.get(step.index)
        if found is None:
            new.append(step)
        elif not _same_time(found.checked_at, step.checked_at):
            raise ApiError(
                409,
                "conflict",
                f"Step {step.index} was already ticked at {_iso(found.checked_at)}.",
            )
    if not new:
        return False
    try:
        async with in_transaction():
            for step in new:
                await ReportStep.create(
                    report_id=report.id,
                    step_index=step.index,
                    checked_at=step.checked_at,
                    checked_by_id=user.id,
                )
                await Event.create(
                    report_id=report.id,
                    actor_id=user.id,
                    kind="step",
                    data={"index": step.index, "checked_at": _iso(step.checked_at)},
                )
    except IntegrityError:
        # A concurrent resend recorded the same steps first: check it agrees.
        return await _merge_steps(report, steps, user)
    return True


async def put_report(
    user: User, report_id: uuid.UUID, body: ReportIn, library: Library
) -> tuple[Report, dict[str, Any] | None]:
    """Create the report, or recognise a resend.

    Returns the report and, when it was created just now, its JSON (None for
    a resend, which the caller reads back in full).
    """
    now = datetime.now(UTC)
    incident = library.incident(body.incident_type)
    if incident is None:
        raise ApiError(
            422,
            "unknown_incident_type",
            f"incident_type: no playbook {body.incident_type!r}.",
            fields=[{"field": "incident_type", "message": "unknown"}],
        )
    site = await _site_for_report(user, body.site)
    _not_in_future(body.occurred_at, "occurred_at", now)
    _check_steps(body.steps, len(incident.handling), now)
    severity = body.severity or Severity(incident.severity)
    digest = content_hash(body, severity)

    # Optimistic: a new id is the common case, so insert at once and let the
    # primary key recognise a resend (this saves a read on every first send).
    try:
        async with in_transaction():
            report = await Report.create(
                id=report_id,
                site=site,
                reporter=user,
                incident_type=incident.id,
                playbook_version=body.playbook_version or library.version,
                severity=severity,
                status=ReportStatus.NEW,
                content_hash=digest,
                occurred_at=body.occurred_at,
                client_sent_at=body.client_sent_at,
                location_text=body.location.text.strip(),
                latitude=body.location.lat,
                longitude=body.location.lng,
                location_accuracy_m=body.location.accuracy_m,
                notes=body.notes,
            )
            event = await Event.create(
                report=report,
                actor=user,
                kind="created",
                data={"severity": severity.value, "incident_type": incident.id},
            )
            steps = [
                ReportStep(
                    report=report, step_index=s.index, checked_at=s.checked_at, checked_by=user
                )
                for s in body.steps
            ]
            if steps:
                await ReportStep.bulk_create(steps)
    except IntegrityError:
        existing = await Report.get_or_none(id=report_id)
        if existing is None:
            raise
    else:
        # Everything the answer needs is at hand: no read-back.
        report.site, report.reporter, report.assignee = site, user, None
        return report, {**report_json(report, steps=steps, events=[event]), "photos": []}
    if not await can_see(user, existing):
        raise ApiError(403, "forbidden", "This report id belongs to a report you may not see.")
    if existing.content_hash != digest:
        raise ApiError(409, "conflict", "A different report was already sent with this id.")
    await _merge_steps(existing, body.steps, user)
    return existing, None


async def tick_step(
    user: User, report: Report, index: int, body: StepTickIn, library: Library
) -> bool:
    """Record one ticked step after the report was sent. Returns True if new."""
    incident = library.incident(report.incident_type)
    count = len(incident.handling) if incident else 0
    step = [StepIn(index=index, checked_at=body.checked_at)]
    _check_steps(step, count, datetime.now(UTC))
    return await _merge_steps(report, step, user)


# --- reading ----------------------------------------------------------------


def _person(user: User | None) -> dict[str, str] | None:
    if user is None:
        return None
    return {"username": user.username, "display_name": user.display_name}


async def _site_for_report(user: User, code: str) -> Site:
    """The site a report is for: one query in the usual case of a member."""
    if user.role != Role.ADMIN:
        site = await user.sites.filter(code=code).first()
        if site is not None:
            return site
    site = await _site_by_code(code)
    await require_site(user, site)
    return site


async def _site_by_code(code: str) -> Site:
    site = await Site.get_or_none(code=code)
    if site is None:
        raise ApiError(
            422,
            "unknown_site",
            f"site: no site {code!r}.",
            fields=[{"field": "site", "message": "unknown"}],
        )
    return site


def report_json(
    report: Report,
    *,
    steps: list[ReportStep] | None = None,
    events: list[Event] | None = None,
) -> dict[str, Any]:
    """The API shape of a report; relations must be fetched already."""
    steps = list(report.steps) if steps is None else steps
    body: dict[str, Any] = {
        "id": str(report.id),
        "site": {"code": report.site.code, "name": report.site.name},
        "reporter": _person(report.reporter),
        "incident_type": report.incident_type,
        "playbook_version": report.playbook_version,
        "severity": report.severity.value,
        "status": report.status.value,
        "occurred_at": _iso(report.occurred_at),
        "client_sent_at": _iso(report.client_sent_at),
        "received_at": _iso(report.received_at),
        "location": {
            "text": report.location_text,
            "lat": report.latitude,
            "lng": report.longitude,
            "accuracy_m": report.location_accuracy_m,
        },
        "notes": report.notes,
        "assignee": _person(report.assignee),
        "steps": [
            {
                "index": s.step_index,
                "checked_at": _iso(s.checked_at),
                "received_at": _iso(s.received_at),
            }
            for s in sorted(steps, key=lambda s: s.step_index)
        ],
    }
    if events is not None:
        body["events"] = [
            {"kind": e.kind, "at": _iso(e.created_at), "actor": _person(e.actor), "data": e.data}
            for e in events
        ]
    return body


async def load_full(report: Report) -> dict[str, Any]:
    await report.fetch_related("site", "reporter", "assignee", "steps", "photos")
    events = (
        await Event.filter(report_id=report.id)
        .order_by("created_at", "id")
        .prefetch_related("actor")
    )
    body = report_json(report, events=events)
    photos = sorted(report.photos, key=lambda p: p.created_at)
    body["photos"] = [photo_json(p, report.id) for p in photos]
    return body


def photo_json(photo: Photo, report_id: uuid.UUID) -> dict[str, Any]:
    """The API shape of a photo: its metadata and its authorised URLs."""
    url = f"/api/reports/{report_id}/photos/{photo.id}"
    return {
        "id": str(photo.id),
        "kind": photo.kind.value,
        "width": photo.width,
        "height": photo.height,
        "sha256": photo.sha256,
        "taken_at": _iso(photo.taken_at),
        "latitude": photo.latitude,
        "longitude": photo.longitude,
        "camera": photo.camera,
        "url": url,
        "thumbnail_url": f"{url}/thumb",
    }


class ListQuery(BaseModel):
    status: ReportStatus | None = None
    type: str | None = Field(default=None, max_length=64)
    site: str | None = Field(default=None, max_length=32)
    since: AwareDatetime | None = None
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=100)


def encode_cursor(report: Report) -> str:
    raw = json.dumps({"r": report.received_at.isoformat(), "i": str(report.id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        return datetime.fromisoformat(data["r"]), uuid.UUID(data["i"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "cursor: not a cursor this server gave out.") from None


async def list_reports(user: User, query: ListQuery) -> dict[str, Any]:
    """The user's visible reports, newest first, a page at a time."""
    qs = await visible_reports(user)
    if query.status:
        qs = qs.filter(status=query.status)
    if query.type:
        qs = qs.filter(incident_type=query.type)
    if query.site:
        site = await _site_by_code(query.site)
        await require_site(user, site)
        qs = qs.filter(site_id=site.id)
    if query.since:
        qs = qs.filter(received_at__gte=query.since)
    if query.cursor:
        at, last_id = decode_cursor(query.cursor)
        qs = qs.filter(Q(received_at__lt=at) | Q(received_at=at, id__lt=last_id))
    page = await (
        qs.order_by("-received_at", "-id")
        .limit(query.limit + 1)
        .prefetch_related("site", "reporter", "assignee", "steps")
    )
    more = len(page) > query.limit
    page = page[: query.limit]
    return {
        "reports": [report_json(r) for r in page],
        "next_cursor": encode_cursor(page[-1]) if more else None,
    }
