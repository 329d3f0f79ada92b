"""The review of an incident: 分析 answers and 改善 (corrective) actions."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from server.models.staff import User

if TYPE_CHECKING:
    from server.models.reports import Report


class ActionStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    VERIFIED = "verified"


class Verdict(StrEnum):
    """The answer to one 分析 item: it held, it fell short (a gap), or it does not apply."""

    OK = "ok"
    GAP = "gap"
    NA = "na"


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
