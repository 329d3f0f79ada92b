"""A new report from the phone: its validation and the idempotent write by its id.

A report is identified by a UUID made on the phone, so a resend after a lost
answer is safe. What the guard entered is hashed; the same id with the same
hash is the same report (200, nothing changes), with another hash a conflict
(409). Transport fields (the phone's send time, its playbook version) are
recorded but never make a resend a conflict, and the steps ticked before
sending are merged by step index (:mod:`server.report_steps`).
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, model_validator
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.access import require_resender, require_site, sees_every_site
from server.alerts.queue import notify_new_report, tell_channels
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
from server.playbook_book import is_version_id
from server.playbooks import Incident
from server.report_shapes import (
    AlertedOut,
    FollowedOut,
    ReportOut,
    events_out,
    report_out,
    summary_fields,
)
from server.report_steps import MAX_STEPS, StepIn, check_steps, merge_steps
from server.schemas import RECENT, Time, Written, check_recent, iso, parse_report_id
from server.sites import site_by_code

MAX_NOTES = 10_000


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


# --- checks -------------------------------------------------------------------


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
    site = await site_by_code(code)
    await require_site(user, site)
    return site


async def _followed(ctx: Context, body: ReportIn, site: Site) -> Incident:
    """The playbook the report followed: the version the phone names (a
    report started offline before a publish keeps the version it showed),
    else the site's current one. A phone from before versions names the
    files' hash: that is the first version, imported from those files."""
    version = body.playbook_version
    if version is None:
        found = ctx.library.incident(body.incident_type, site.id)
        assert found is not None  # checked by the caller
        return found
    await ctx.library.fresh(version)
    if not is_version_id(version):
        followed = ctx.library.followed(body.incident_type, version)
        assert followed is not None
        return followed
    published = ctx.library.at(version)
    if (
        published is None
        or published.incident_type != body.incident_type
        or published.scope not in (0, site.id)
    ):
        raise invalid(
            "playbook_version",
            Msg(
                "no version {version!r} of the playbook {incident!r} for this site.",
                version=version,
                incident=body.incident_type,
            ),
            code="unknown_playbook_version",
            problem="unknown",
        )
    return published.incident


# --- the write ----------------------------------------------------------------


async def put_report(
    ctx: Context, user: User, report_id: str, body: ReportIn
) -> Written[ReportOut]:
    """Create the report under the phone's id, or recognise a resend.

    A new report is queued for the site's supervisors in the same
    transaction (a durable outbox), and the delivery worker is woken.
    """
    rid = parse_report_id(report_id)
    now = ctx.clock()
    if ctx.library.incident(body.incident_type) is None:
        raise invalid(
            "incident_type",
            Msg("no playbook {incident!r}.", incident=body.incident_type),
            code="unknown_incident_type",
            problem="unknown",
        )
    site = await _site_for_report(user, body.site)
    incident = await _followed(ctx, body, site)
    check_recent(body.occurred_at, "occurred_at", now)
    if body.client_sent_at is not None:
        check_recent(body.client_sent_at, "client_sent_at", now)
    check_steps(body.steps, len(incident.handling), now)
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
                playbook_version=incident.version,
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
        playbook=FollowedOut.of(incident),
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
    await merge_steps(existing, steps, user)
    return Written(await report_out(existing, ctx))
