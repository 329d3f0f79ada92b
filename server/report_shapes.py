"""What the API answers about a report: its summary in lists, the whole of it alone.

Built only from rows already fetched (see each function), so that a write
can answer without reading back what it has just stored.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from pydantic import Field

from server.context import Context
from server.models import (
    ActionStatus,
    AnalysisAnswer,
    CorrectiveAction,
    Event,
    Photo,
    Report,
    ReportStatus,
    ReportStep,
    Severity,
    Verdict,
)
from server.photos import PhotoOut
from server.playbooks import Incident, Item
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


class AlertedOut(Shape):
    """Who the alert of a new report went to when it arrived: the supervisors
    with a device subscribed (people, not devices) and the work-chat groups."""

    supervisors: int
    channels: int


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


class AnalysisOut(Shape):
    """The answer to one 分析 item (``index`` in the playbook's analysis list)."""

    index: int
    verdict: Verdict
    note: str
    by: Person | None
    at: Timestamp | None


class RecheckOut(Shape):
    """The latest re-check (复查) of an action, by someone other than its owner."""

    passed: bool
    note: str
    by: Person | None
    at: Timestamp | None


class ActionOut(Shape):
    """A corrective action (改善): who does what by when, and its re-check."""

    id: uuid.UUID
    item: int | None
    description: str
    owner: Person | None
    due: date | None
    status: ActionStatus
    overdue: bool
    created_by: Person | None
    done_at: Timestamp | None
    done_note: str
    done_photos: list[str]
    check: RecheckOut | None

    @classmethod
    def of(cls, action: CorrectiveAction, today: date) -> ActionOut:
        """``action`` with its owner, creator and re-checker fetched."""
        check = None
        if action.rechecked_at is not None:
            check = RecheckOut(
                passed=action.status == ActionStatus.VERIFIED,
                note=action.recheck_note,
                by=Person.of(action.rechecked_by),
                at=action.rechecked_at,
            )
        return cls(
            id=action.id,
            item=action.item_index,
            description=action.description,
            owner=Person.of(action.owner),
            due=action.due_date,
            status=action.status,
            overdue=action.is_overdue(today),
            created_by=Person.of(action.created_by),
            done_at=action.done_at,
            done_note=action.done_note,
            done_photos=list(action.done_photos or []),
            check=check,
        )


class ReportOut(ReportSummary):
    """A report with its steps, timeline, photos, 分析 answers and 改善 actions."""

    events: list[EventOut]
    playbook: FollowedOut | None = Field(
        description="the steps of the playbook version it followed (null: a type since removed)"
    )
    photos: list[PhotoOut]
    analysis: list[AnalysisOut]
    actions: list[ActionOut]
    alerted: AlertedOut | None = Field(
        description="who was alerted when it arrived; null for reports from before this was kept"
    )


class FollowedItem(Shape):
    """A step or item of the playbook a report followed, in both languages."""

    key: str
    text: dict[str, str] = Field(description="zh-CN and en")
    action: str | None
    origin: str = Field(description="whose words: source, product, company or site")


class FollowedOut(Shape):
    """The playbook a report followed, as it was in its version (never the current one)."""

    version: str
    title: dict[str, str]
    handling: list[FollowedItem]
    analysis: list[FollowedItem]
    improvement: list[FollowedItem]

    @classmethod
    def of(cls, incident: Incident | None) -> FollowedOut | None:
        if incident is None:
            return None

        def items(seq: tuple[Item, ...]) -> list[FollowedItem]:
            return [
                FollowedItem(key=i.key, text=i.text.as_dict(), action=i.action, origin=i.origin)
                for i in seq
            ]

        return cls(
            version=incident.version,
            title=incident.title.as_dict(),
            handling=items(incident.handling),
            analysis=items(incident.analysis),
            improvement=items(incident.improvement),
        )


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
        # Unticked steps are not done: their ticks stay as evidence (the timeline).
        "steps": [
            StepOut(index=s.step_index, checked_at=s.checked_at, received_at=s.received_at)
            for s in sorted(steps, key=lambda s: s.step_index)
            if s.ticked
        ],
    }


def alerted_of(events: list[Event]) -> AlertedOut | None:
    """Who was alerted of the report, as its ``created`` event recorded."""
    for event in events:
        if event.kind == "created":
            found = (event.data or {}).get("alerted")
            return AlertedOut(**found) if isinstance(found, dict) else None
    return None


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


async def load_review(report: Report) -> tuple[list[AnalysisAnswer], list[CorrectiveAction]]:
    """A report's 分析 answers (by item) and 改善 actions (oldest first), with their people."""
    answers = (
        await AnalysisAnswer.filter(report_id=report.id)
        .order_by("item_index")
        .prefetch_related("answered_by")
    )
    actions = (
        await CorrectiveAction.filter(report_id=report.id)
        .order_by("created_at", "id")
        .prefetch_related("owner", "created_by", "rechecked_by")
    )
    return list(answers), list(actions)


def analysis_out(answers: list[AnalysisAnswer]) -> list[AnalysisOut]:
    return [
        AnalysisOut(
            index=a.item_index,
            verdict=a.verdict,
            note=a.note,
            by=Person.of(a.answered_by),
            at=a.updated_at,
        )
        for a in answers
    ]


async def report_out(report: Report, ctx: Context) -> ReportOut:
    """The whole report, read from the database, with the playbook it followed."""
    today = ctx.today()
    events, photos = await load_record(report)
    answers, actions = await load_review(report)
    await ctx.library.fresh(report.playbook_version)
    return ReportOut(
        **summary_fields(report, list(report.steps)),
        playbook=FollowedOut.of(ctx.library.of_report(report)),
        events=events_out(events),
        photos=[PhotoOut.of(p, report) for p in photos],
        analysis=analysis_out(answers),
        actions=[ActionOut.of(a, today) for a in actions],
        alerted=alerted_of(events),
    )
