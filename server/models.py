"""The tables of the whole domain.

They are all here from the first migration so that later work adds columns,
not tables. Ids that a phone makes (reports, photos, steps by index) are the
primary or unique keys, which is what makes every write idempotent.
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Any, cast

from tortoise import fields
from tortoise.expressions import F, Q, Subquery
from tortoise.models import Model
from tortoise.queryset import QuerySet

from server.errors import ApiError


class Role(StrEnum):
    GUARD = "guard"
    TECHNICIAN = "technician"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


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


class ActionStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    VERIFIED = "verified"


class Verdict(StrEnum):
    """The answer to one 分析 item: it held, it fell short (a gap), or it does not apply."""

    OK = "ok"
    GAP = "gap"
    NA = "na"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    GONE = "gone"


class Site(Model):
    """A residential estate (小区) that staff belong to."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=200)
    created_at = fields.DatetimeField(auto_now_add=True)

    users: fields.ManyToManyRelation[User]
    reports: fields.ReverseRelation[Report]

    class Meta:
        table = "site"


class User(Model):
    """A member of staff: session_version is bumped to revoke every login."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=200, default="")
    role = fields.CharEnumField(Role, max_length=16)
    password_hash = fields.CharField(max_length=255)
    is_active = fields.BooleanField(default=True)
    session_version = fields.IntField(default=1)
    language = fields.CharField(max_length=8, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sites: fields.ManyToManyRelation[Site] = fields.ManyToManyField(
        "onsite.Site", related_name="users", through="user_site"
    )

    class Meta:
        table = "user"

    async def end_sessions(self) -> None:
        """End every session of this user at its next request (a lost phone)."""
        await User.filter(id=self.id).update(session_version=F("session_version") + 1)
        await self.refresh_from_db(fields=["session_version"])

    async def site_ids(self) -> set[int]:
        """The ids of the sites this user belongs to."""
        # values_list(flat=True) gives bare values; tortoise types them as tuples.
        ids = cast("list[int]", await self.sites.all().values_list("id", flat=True))
        return set(ids)


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

    @classmethod
    async def visible_to(cls, user: User) -> QuerySet[Report]:
        """The reports ``user`` may see: own ones, assigned ones, or their sites'."""
        if user.role == Role.ADMIN:
            return cls.all()
        if user.role == Role.SUPERVISOR:
            return cls.filter(site_id__in=await user.site_ids())
        # Others see what they reported, what they repair, and where they own
        # a corrective action.
        owned = Q(id__in=Subquery(CorrectiveAction.filter(owner_id=user.id).values("report_id")))
        if user.role == Role.TECHNICIAN:
            return cls.filter(Q(reporter_id=user.id) | Q(assignee_id=user.id) | owned)
        return cls.filter(Q(reporter_id=user.id) | owned)

    @classmethod
    async def seen_by(cls, user: User, report_id: uuid.UUID) -> Report:
        """The report, or 404 if there is none, 403 if ``user`` may not see it."""
        report = await cls.get_or_none(id=report_id)
        if report is None:
            raise ApiError(404, "not_found", "No such report.")
        if not await report.is_visible_to(user):
            raise ApiError(403, "forbidden", "This report is not yours to see.")
        return report

    def ensure_open(self) -> None:
        """409 once the incident is closed: nothing new is added to a closed record."""
        if self.status == ReportStatus.CLOSED:
            raise ApiError(
                409, "closed", "This incident is closed: nothing more can be added to it."
            )

    async def is_visible_to(self, user: User) -> bool:
        if user.role == Role.ADMIN:
            return True
        if user.role == Role.SUPERVISOR:
            return self.site_id in await user.site_ids()
        if self.reporter_id == user.id:
            return True
        if user.role == Role.TECHNICIAN and self.assignee_id == user.id:
            return True
        return await CorrectiveAction.exists(report_id=self.id, owner_id=user.id)


class ReportStep(Model):
    """A ticked handling step: the phone's time is the evidence trail."""

    id = fields.IntField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="steps", on_delete=fields.CASCADE
    )
    step_index = fields.IntField()
    checked_at = fields.DatetimeField()
    received_at = fields.DatetimeField(auto_now_add=True)
    checked_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="step_ticks", null=True, on_delete=fields.SET_NULL
    )

    class Meta:
        table = "report_step"
        unique_together = (("report", "step_index"),)


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


class AnalysisAnswer(Model):
    """The supervisor's answer to one 分析 item of the report's playbook."""

    id = fields.IntField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="analysis_answers", on_delete=fields.CASCADE
    )
    item_index = fields.IntField()
    verdict = fields.CharEnumField(Verdict, max_length=8)
    note = fields.TextField(default="", db_default="")
    answered_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="analysis_answers", null=True, on_delete=fields.SET_NULL
    )
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "analysis_answer"
        unique_together = (("report", "item_index"),)


class CorrectiveAction(Model):
    """A 改善 action with an owner and a due date, re-checked once done."""

    id = fields.UUIDField(primary_key=True)
    report: fields.ForeignKeyRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="actions", on_delete=fields.CASCADE
    )
    report_id: uuid.UUID
    item_index = fields.IntField(null=True)
    description = fields.TextField()
    owner: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="actions", null=True, on_delete=fields.SET_NULL
    )
    owner_id: int | None
    due_date = fields.DateField(null=True)
    status = fields.CharEnumField(ActionStatus, max_length=16, default=ActionStatus.OPEN)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="created_actions", null=True, on_delete=fields.SET_NULL
    )
    done_at = fields.DatetimeField(null=True)
    done_note = fields.TextField(default="", db_default="")
    # Ids of the report's photos that show the work done.
    done_photos: fields.JSONField[list[str]] = fields.JSONField(default=list, db_default="[]")
    rechecked_at = fields.DatetimeField(null=True)
    rechecked_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="rechecked_actions", null=True, on_delete=fields.SET_NULL
    )
    recheck_note = fields.TextField(default="")
    # The day its owner was last reminded that it is overdue: claimed with a
    # conditional UPDATE, so of several servers one sends the day's reminder.
    reminded_on = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True, null=True)

    class Meta:
        table = "corrective_action"

    def is_overdue(self, today: date) -> bool:
        """Still open after its due day (``today`` is the sites' local date)."""
        return (
            self.status == ActionStatus.OPEN and self.due_date is not None and self.due_date < today
        )


class PushSubscription(Model):
    """One device's Web Push subscription."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="push_subscriptions", on_delete=fields.CASCADE
    )
    user_id: int
    endpoint = fields.CharField(max_length=1000, unique=True)
    p256dh = fields.CharField(max_length=200)
    auth = fields.CharField(max_length=100)
    language = fields.CharField(max_length=8, default="zh-CN")
    user_agent = fields.CharField(max_length=500, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    last_success_at = fields.DatetimeField(null=True)

    class Meta:
        table = "push_subscription"


class PushDelivery(Model):
    """A push message waiting for, or done with, delivery: survives restarts."""

    id = fields.BigIntField(primary_key=True)
    subscription: fields.ForeignKeyNullableRelation[PushSubscription] = fields.ForeignKeyField(
        "onsite.PushSubscription", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    report: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="push_deliveries", null=True, on_delete=fields.SET_NULL
    )
    endpoint = fields.CharField(max_length=1000)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    urgency = fields.CharField(max_length=16, default="normal")
    ttl_seconds = fields.IntField()
    topic = fields.CharField(max_length=32, null=True)
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "push_delivery"


class PushAttempt(Model):
    """The log of every delivery attempt: status code, error, time taken."""

    id = fields.BigIntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[PushDelivery] = fields.ForeignKeyField(
        "onsite.PushDelivery", related_name="attempt_log", on_delete=fields.CASCADE
    )
    status_code = fields.IntField(null=True)
    error = fields.CharField(max_length=500, default="")
    duration_ms = fields.IntField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "push_attempt"
