"""A report's whole record as its pages show it: the report page and the
printable report (the API's answer is :func:`server.report_shapes.report_out`).

Read only for someone who may see the report (:func:`server.access.report_for`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from server.access import report_for
from server.models import AnalysisAnswer, CorrectiveAction, Event, Photo, Report, User
from server.report_shapes import load_record, load_review


@dataclass(frozen=True)
class Record:
    """A report with its people, site and steps fetched, its timeline and
    photos (oldest first), its 分析 answers and 改善 actions."""

    report: Report
    events: list[Event]
    photos: list[Photo]
    answers: list[AnalysisAnswer]
    actions: list[CorrectiveAction]


async def record(user: User, report_id: uuid.UUID) -> Record:
    """The record of the report ``report_id``; 404 or 403 as :func:`report_for` says."""
    report = await report_for(user, report_id)
    events, photos = await load_record(report)
    answers, actions = await load_review(report)
    return Record(report, events, photos, answers, actions)


async def printable(user: User, report_id: uuid.UUID) -> Record:
    """The record, with who closed the report (the printed report's signature)."""
    found = await record(user, report_id)
    await found.report.fetch_related("closed_by")
    return found


async def site_staff(report: Report) -> list[User]:
    """The active staff of the report's site, by name: whom a supervisor
    assigns it to or gives an action."""
    return list(
        await User.filter(is_active=True, sites__id=report.site_id).order_by(
            "display_name", "username"
        )
    )
