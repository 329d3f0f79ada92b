"""Reports and what hangs on them: ticked steps, photos, the timeline.

Ids that a phone makes (reports, photos, steps by index) are the primary or
unique keys, which is what makes every write idempotent.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from server.models.sites import Site
from server.models.staff import User


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class ReportStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    REPAIRED = "repaired"
    CLOSED = "closed"


class PhotoKind(StrEnum):
    EVIDENCE = "evidence"
    REPAIR_BEFORE = "repair_before"
    REPAIR_AFTER = "repair_after"


class Report(Model):
    """One incident report: its id is a UUID made on the phone."""

    id = fields.UUIDField(primary_key=True)
    site: fields.ForeignKeyRelation[Site] = fields.ForeignKeyField(
        "onsite.Site", related_name="reports", on_delete=fields.RESTRICT
    )
    site_id: int
    reporter: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="reports", on_delete=fields.RESTRICT
    )
    reporter_id: int
    incident_type = fields.CharField(max_length=64, db_index=True)
    playbook_version = fields.CharField(max_length=32)
    severity = fields.CharEnumField(Severity, max_length=16)
    status = fields.CharEnumField(ReportStatus, max_length=16, default=ReportStatus.NEW)
    # What the guard entered, hashed, so a resend can be told from a conflict.
    content_hash = fields.CharField(max_length=64)
    occurred_at = fields.DatetimeField()
    client_sent_at = fields.DatetimeField(null=True)
    received_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    location_text = fields.CharField(max_length=500, default="")
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    location_accuracy_m = fields.FloatField(null=True)
    notes = fields.TextField(default="")
    assignee: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="assigned_reports", null=True, on_delete=fields.SET_NULL
    )
    assignee_id: int | None
    acknowledged_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="acknowledged_reports", null=True, on_delete=fields.SET_NULL
    )
    acknowledged_at = fields.DatetimeField(null=True)
    closed_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="closed_reports", null=True, on_delete=fields.SET_NULL
    )
    closed_at = fields.DatetimeField(null=True)
    closing_note = fields.TextField(default="")
    # The approved wording (统一回复口径) staff give for this incident: the
    # latest version here, every version in the timeline.
    # db_default: the column can be added to a table that already has rows.
    reply_text = fields.TextField(default="", db_default="")
    reply_at = fields.DatetimeField(null=True)
    reply_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="published_replies", null=True, on_delete=fields.SET_NULL
    )
    repaired_at = fields.DatetimeField(null=True)
    repair_note = fields.TextField(default="", db_default="")
    # Set once, by whichever server claims the escalation first.
    escalated_at = fields.DatetimeField(null=True)
    # An admin closed it with 分析 or 改善 still open: why.
    closing_waiver = fields.TextField(default="", db_default="")
    updated_at = fields.DatetimeField(auto_now=True)

    steps: fields.ReverseRelation[ReportStep]
    photos: fields.ReverseRelation[Photo]
    events: fields.ReverseRelation[Event]

    class Meta:
        table = "report"
        indexes = (("site_id", "received_at"),)


class ReportStep(Model):
    """A ticked handling step: the phone's time is the evidence trail.

    A step ticked by mistake is unticked, not deleted: ``unchecked_at`` is
    set and the tick stays. Ticked again later, ``checked_at`` is the new
    tick and ``unchecked_at`` the untick before it; every tick and untick is
    also in the timeline (events ``step`` and ``step_unchecked``).
    """

    id = fields.IntField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="steps", on_delete=fields.CASCADE
    )
    report_id: uuid.UUID
    step_index = fields.IntField()
    checked_at = fields.DatetimeField()
    received_at = fields.DatetimeField(auto_now_add=True)
    checked_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="step_ticks", null=True, on_delete=fields.SET_NULL
    )
    # The latest untick, at the phone's time; null if never unticked.
    unchecked_at = fields.DatetimeField(null=True)
    unchecked_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="step_unticks", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "report_step"
        unique_together = (("report", "step_index"),)

    @property
    def ticked(self) -> bool:
        """Done: never unticked, or ticked again after the untick."""
        return self.unchecked_at is None or self.checked_at > self.unchecked_at


class Photo(Model):
    """A photo of a report: the files live in the photo store, not the database."""

    id = fields.UUIDField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="photos", on_delete=fields.CASCADE
    )
    report_id: uuid.UUID
    kind = fields.CharEnumField(PhotoKind, max_length=16, default=PhotoKind.EVIDENCE)
    uploaded_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="photos", null=True, on_delete=fields.SET_NULL
    )
    sha256 = fields.CharField(max_length=64)
    width = fields.IntField()
    height = fields.IntField()
    display_bytes = fields.IntField()
    thumb_bytes = fields.IntField()
    taken_at = fields.DatetimeField(null=True)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    camera = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "photo"


class Event(Model):
    """The append-only timeline of a report: created, acknowledged, assigned …"""

    id = fields.BigIntField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="events", on_delete=fields.CASCADE
    )
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharField(max_length=32)
    data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "event"
