"""What the API answers about a report: its summary in lists, the whole of it alone.

Built only from rows already fetched (see each function), so that a write
can answer without reading back what it has just stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.models import Event, Photo, Report, ReportStatus, ReportStep, Severity
from server.photos import PhotoOut
from server.schemas import Person, Shape, SiteRef, Timestamp


class LocationOut(Shape):
    text: str
    lat: float | None
    lng: float | None
    accuracy_m: float | None


class StepOut(Shape):
    index: int
    checked_at: Timestamp
    received_at: Timestamp | None


class EventOut(Shape):
    kind: str
    at: Timestamp
    actor: Person | None
    data: dict[str, Any]


class ReplyOut(Shape):
    """The approved wording (统一回复口径) as last published."""

    text: str
    at: Timestamp | None
    by: Person | None


class ReportSummary(Shape):
    """A report with its ticked steps and where its follow-up stands, as lists show it."""

    id: uuid.UUID
    site: SiteRef
    reporter: Person | None
    incident_type: str
    playbook_version: str
    severity: Severity
    status: ReportStatus
    occurred_at: Timestamp
    client_sent_at: Timestamp | None
    received_at: Timestamp | None
    location: LocationOut
    notes: str
    assignee: Person | None
    acknowledged_by: Person | None
    acknowledged_at: Timestamp | None
    reply: ReplyOut | None
    repaired_at: Timestamp | None
    repair_note: str
    closed_at: Timestamp | None
    closing_note: str
    escalated_at: Timestamp | None
    steps: list[StepOut]


class ReportOut(ReportSummary):
    """A report with its steps, its timeline and its photos."""

    events: list[EventOut]
    photos: list[PhotoOut]


class ReportPage(Shape):
    """Reports, newest first, and the cursor of the next page (null at the end)."""

    reports: list[ReportSummary]
    next_cursor: str | None


# The relations a summary shows: fetch them first (prefetch_related(*RELATED)).
RELATED = ("site", "reporter", "assignee", "acknowledged_by", "reply_by")


def summary_fields(report: Report, steps: list[ReportStep]) -> dict[str, Any]:
    """A report's fields; the RELATED rows must be fetched."""
    return {
        "id": report.id,
        "site": SiteRef.of(report.site),
        "reporter": Person.of(report.reporter),
        "incident_type": report.incident_type,
        "playbook_version": report.playbook_version,
        "severity": report.severity,
        "status": report.status,
        "occurred_at": report.occurred_at,
        "client_sent_at": report.client_sent_at,
        "received_at": report.received_at,
        "location": LocationOut(
            text=report.location_text,
            lat=report.latitude,
            lng=report.longitude,
            accuracy_m=report.location_accuracy_m,
        ),
        "notes": report.notes,
        "assignee": Person.of(report.assignee),
        "acknowledged_by": Person.of(report.acknowledged_by),
        "acknowledged_at": report.acknowledged_at,
        "reply": ReplyOut(text=report.reply_text, at=report.reply_at, by=Person.of(report.reply_by))
        if report.reply_text
        else None,
        "repaired_at": report.repaired_at,
        "repair_note": report.repair_note,
        "closed_at": report.closed_at,
        "closing_note": report.closing_note,
        "escalated_at": report.escalated_at,
        "steps": [
            StepOut(index=s.step_index, checked_at=s.checked_at, received_at=s.received_at)
            for s in sorted(steps, key=lambda s: s.step_index)
        ],
    }


def events_out(events: list[Event]) -> list[EventOut]:
    return [
        EventOut(kind=e.kind, at=e.created_at, actor=Person.of(e.actor), data=e.data)
        for e in events
    ]


async def load_record(report: Report) -> tuple[list[Event], list[Photo]]:
    """Fetch what a report's page and answer show: its people, site and steps
    onto ``report``; its timeline (with actors) and photos, oldest first."""
    await report.fetch_related(*RELATED, "steps")
    events = (
        await Event.filter(report_id=report.id)
        .order_by("created_at", "id")
        .prefetch_related("actor")
    )
    photos = await Photo.filter(report_id=report.id).order_by("created_at")
    return list(events), list(photos)


async def report_out(report: Report) -> ReportOut:
    """The whole report, read from the database."""
    events, photos = await load_record(report)
    return ReportOut(
        **summary_fields(report, list(report.steps)),
        events=events_out(events),
        photos=[PhotoOut.of(p) for p in photos],
    )
