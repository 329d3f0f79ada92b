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
import hashlib
import json
import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from server.access import (
    report_for,
    reports_visible_to,
    require_open,
    require_reporter,
    require_resender,
    require_site,
    sees_every_site,
)
from server.context import Context
from server.errors import ApiError, Msg, invalid
from server.models import (
    Event,
    PushDelivery,
    Report,
    ReportStatus,
    ReportStep,
    Severity,
    Site,
    User,
)
from server.push.queue import notify_new_report, tell_channels
from server.report_shapes import (
    RELATED,
    AlertedOut,
    ReportOut,
    ReportPage,
    ReportSummary,
    events_out,
    report_out,
    summary_fields,
)
from server.schemas import IN_RANGE, RECENT, Id, Time, Written, check_recent, iso, parse_id

MAX_NOTES = 10_000
MAX_STEPS = 500


# --- what the phone sends -----------------------------------------------------


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
    index: int = Field(ge=0, lt=MAX_STEPS)
    checked_at: Time = Field(description=f"when it was done: {RECENT}")


class ReportIn(BaseModel):
    """A report as the phone sends it."""

    # Newer phones may send fields this server does not know yet: ignore
    # them rather than refuse a report from the field.
    model_config = ConfigDict(extra="ignore")

    site: str = Field(min_length=1, max_length=32, description="site code")
    incident_type: str = Field(min_length=1, max_length=64, description="playbook incident id")
    severity: Severity | None = None
    occurred_at: Time = Field(description=f"when it happened: {RECENT}")
    client_sent_at: Time | None = Field(
        default=None, description=f"when the phone sent it: {RECENT}"
    )
    playbook_version: str | None = Field(default=None, max_length=32)
    location: LocationIn = Field(default_factory=LocationIn)
    notes: str = Field(default="", max_length=MAX_NOTES)
    steps: list[StepIn] = Field(default_factory=list, max_length=MAX_STEPS)


class StepTickIn(BaseModel):
    """A handling step done, at the phone's time."""

    checked_at: Time = Field(description=f"when it was done: {RECENT}")


class StepUntickQuery(BaseModel):
    """When a step ticked by mistake was unticked, at the phone's time."""

    at: Time = Field(description=f"when it was unticked: {RECENT}")


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


# --- checks -------------------------------------------------------------------


def parse_report_id(raw: str) -> uuid.UUID:
    return parse_id(raw, "report_id")


def _check_index(index: int, handling_count: int, field: str) -> None:
    if index >= handling_count:
        raise invalid(
            field,
            Msg(
                "this playbook has {count} steps (0 to {last}).",
                count=handling_count,
                last=handling_count - 1,
            ),
            problem="no such step",
        )


def _check_steps(steps: list[StepIn], handling_count: int, now: datetime) -> None:
    seen: set[int] = set()
    for i, step in enumerate(steps):
        _check_index(step.index, handling_count, f"steps.{i}.index")
        if step.index in seen:
            raise invalid(f"steps.{i}.index", Msg("step {index} is given twice.", index=step.index))
        seen.add(step.index)
        check_recent(step.checked_at, f"steps.{i}.checked_at", now)


def content_hash(body: ReportIn, severity: Severity) -> str:
    """A hash of what the guard entered: the identity of a report's content."""
    loc = body.location
    content = {
        "site": body.site,
        "incident_type": body.incident_type,
        "severity": severity.value,
        # Millisecond precision: what JavaScript dates carry.
        "occurred_at": iso(body.occurred_at),
        "location": [loc.text.strip(), loc.lat, loc.lng, loc.accuracy_m],
        "notes": body.notes,
    }
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _site_for_report(user: User, code: str) -> Site:
    """The site a report is for: one query in the usual case of a member."""
    if not sees_every_site(user):
        site = await user.sites.filter(code=code).first()
        if site is not None:
            return site
    site = await _site_by_code(code)
    await require_site(user, site)
    return site


async def _site_by_code(code: str) -> Site:
    site = await Site.get_or_none(code=code)
    if site is None:
        raise invalid(
            "site", Msg("no site {site!r}.", site=code), code="unknown_site", problem="unknown"
        )
    return site


# --- writes -------------------------------------------------------------------


def _same_time(a: datetime, b: datetime) -> bool:
    return abs(a - b) < timedelta(milliseconds=1)


def _stale(found: ReportStep, checked_at: datetime) -> bool:
    """A tick that an untick since has taken back: a resend, not a new tick."""
    return found.unchecked_at is not None and checked_at <= found.unchecked_at


async def _merge_steps(report: Report, steps: list[StepIn], user: User) -> bool:
    """Add the steps not yet recorded, and tick again those unticked before
    these ticks; 409 if a step is ticked at another time.

    Every conflict is found before anything is written, so a 409 stores nothing.
    """
    existing = {s.step_index: s for s in await ReportStep.filter(report_id=report.id)}
    new, again = [], []
    for step in steps:
        found = existing.get(step.index)
        if found is None:
            new.append(step)
        elif _same_time(found.checked_at, step.checked_at) or _stale(found, step.checked_at):
            continue
        elif not found.ticked:
            again.append((found, step))
        else:
            raise ApiError(
                409,
                "conflict",
                Msg(
                    "Step {index} was already ticked at {at}.",
                    index=step.index,
                    at=iso(found.checked_at),
                ),
            )
    if not new and not again:
        return False
    require_open(report)
    try:
        async with in_transaction():
            for found, step in again:
                # Only if still unticked: a concurrent re-tick has the same effect.
                await ReportStep.filter(id=found.id, checked_at=found.checked_at).update(
                    checked_at=step.checked_at, checked_by_id=user.id
                )
                await Event.create(
                    report_id=report.id,
                    actor_id=user.id,
                    kind="step",
                    data={"index": step.index, "checked_at": iso(step.checked_at), "again": True},
                )
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
                    data={"index": step.index, "checked_at": iso(step.checked_at)},
                )
    except IntegrityError:
        # A concurrent resend recorded the same steps first: check it agrees.
        return await _merge_steps(report, steps, user)
    return True


async def put_report(
    ctx: Context, user: User, report_id: str, body: ReportIn
) -> Written[ReportOut]:
    """Create the report under the phone's id, or recognise a resend.

    A new report is queued for the site's supervisors in the same
    transaction (a durable outbox), and the delivery worker is woken.
    """
    rid = parse_report_id(report_id)
    now = ctx.clock()
    incident = ctx.library.incident(body.incident_type)
    if incident is None:
        raise invalid(
            "incident_type",
            Msg("no playbook {incident!r}.", incident=body.incident_type),
            code="unknown_incident_type",
            problem="unknown",
        )
    site = await _site_for_report(user, body.site)
    check_recent(body.occurred_at, "occurred_at", now)
    if body.client_sent_at is not None:
        check_recent(body.client_sent_at, "client_sent_at", now)
    _check_steps(body.steps, len(incident.handling), now)
    severity = body.severity or Severity(incident.severity)
    digest = content_hash(body, severity)

    # Optimistic: a new id is the common case, so insert at once and let the
    # primary key recognise a resend (this saves a read on every first send).
    try:
        async with in_transaction():
            report = await Report.create(
                id=rid,
                site=site,
                reporter=user,
                incident_type=incident.id,
                playbook_version=body.playbook_version or ctx.library.version,
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
            steps = [
                ReportStep(
                    report=report, step_index=s.index, checked_at=s.checked_at, checked_by=user
                )
                for s in body.steps
            ]
            if steps:
                await ReportStep.bulk_create(steps)
            # The channels' message lists the steps done: after them.
            queued = await notify_new_report(report, site, incident.title.as_dict())
            queued += await tell_channels(ctx, report, site, "new", reporter=user)
            alerted = await _alerted(report)
            event = await Event.create(
                report=report,
                actor=user,
                kind="created",
                data={
                    "severity": severity.value,
                    "incident_type": incident.id,
                    "alerted": alerted.model_dump(),
                },
            )
    except IntegrityError:
        existing = await Report.get_or_none(id=rid)
        if existing is None:
            raise
        return await _resend(ctx, existing, user, digest, body.steps)
    ctx.committed(queued)
    # Everything the answer needs is at hand: no read-back.
    report.site, report.reporter = site, user
    report.assignee = report.acknowledged_by = report.reply_by = None
    event.actor = user
    out = ReportOut(
        **summary_fields(report, steps),
        events=events_out([event]),
        photos=[],
        analysis=[],
        actions=[],
        alerted=alerted,
    )
    return Written(out, created=True)


async def _alerted(report: Report) -> AlertedOut:
    """Who the alerts just queued for ``report`` go to: supervisors (people,
    however many devices each has) and work-chat groups."""
    deliveries = PushDelivery.filter(report_id=report.id)
    people = await deliveries.filter(subscription_id__isnull=False).values_list(
        "subscription__user_id", flat=True
    )
    groups = await deliveries.filter(channel_id__isnull=False).values_list("channel_id", flat=True)
    return AlertedOut(supervisors=len(set(people)), channels=len(set(groups)))


async def _resend(
    ctx: Context, existing: Report, user: User, digest: str, steps: list[StepIn]
) -> Written[ReportOut]:
    await require_resender(user, existing)
    if existing.content_hash != digest:
        raise ApiError(409, "conflict", "A different report was already sent with this id.")
    await _merge_steps(existing, steps, user)
    return Written(await report_out(existing, ctx.today()))


async def tick_step(
    ctx: Context, user: User, report_id: str, index: int, body: StepTickIn
) -> Written[ReportOut]:
    """Record one handling step ticked after the report was sent, by its
    reporter, until the incident is closed (a resend after that is still 200)."""
    report = await report_for(user, parse_report_id(report_id))
    require_reporter(user, report)
    incident = ctx.library.incident(report.incident_type)
    _check_index(index, len(incident.handling) if incident else 0, "index")
    check_recent(body.checked_at, "checked_at", ctx.clock())
    step = [StepIn(index=index, checked_at=body.checked_at)]
    created = await _merge_steps(report, step, user)
    if created:
        ctx.committed()
    return Written(await report_out(report, ctx.today()), created=created)


async def untick_step(
    ctx: Context, user: User, report_id: str, index: int, query: StepUntickQuery
) -> ReportOut:
    """Take back a step ticked by mistake, by its reporter, until the incident
    is closed. The tick is kept as evidence, the untick recorded beside it and
    in the timeline. Idempotent: a step not ticked (never, or unticked
    already), or ticked again after ``at``, is answered unchanged (200)."""
    report = await report_for(user, parse_report_id(report_id))
    require_reporter(user, report)
    incident = ctx.library.incident(report.incident_type)
    _check_index(index, len(incident.handling) if incident else 0, "index")
    check_recent(query.at, "at", ctx.clock())
    found = await ReportStep.get_or_none(report_id=report.id, step_index=index)
    if found is None or not found.ticked or found.checked_at > query.at:
        return await report_out(report, ctx.today())
    require_open(report)
    async with in_transaction():
        # Only the tick this untick saw: a re-tick meanwhile stands.
        changed = await ReportStep.filter(id=found.id, checked_at=found.checked_at).update(
            unchecked_at=query.at, unchecked_by_id=user.id
        )
        if changed:
            await Event.create(
                report_id=report.id,
                actor_id=user.id,
                kind="step_unchecked",
                data={
                    "index": index,
                    "unchecked_at": iso(query.at),
                    "checked_at": iso(found.checked_at),
                },
            )
    if changed:
        ctx.committed()
    return await report_out(report, ctx.today())


# --- reading ------------------------------------------------------------------


async def get_report(ctx: Context, user: User, report_id: str) -> ReportOut:
    report = await report_for(user, parse_report_id(report_id))
    return await report_out(report, ctx.today())


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


async def filter_reports(user: User, query: ReportFilter) -> QuerySet[Report]:
    """The reports ``user`` may see that match ``query``: what the list pages
    through and the export writes out. A site the user does not belong to is
    403, an unknown one 422, raised here before anything is answered."""
    qs = await reports_visible_to(user)
    if query.status:
        qs = qs.filter(status=query.status)
    if query.severity:
        qs = qs.filter(severity=query.severity)
    if query.type:
        qs = qs.filter(incident_type=query.type)
    if query.assignee == "me":
        qs = qs.filter(assignee_id=user.id)
    elif query.assignee:
        qs = qs.filter(assignee__username=query.assignee)
    if query.site:
        site = await _site_by_code(query.site)
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
