"""The log of what admins (and the command line) changed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from server.models.staff import User


class AdminLog(Model):
    """One change made by an admin (or the CLI): who, what, to what, when."""

    id = fields.BigIntField(primary_key=True)
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="admin_changes", null=True, on_delete=fields.SET_NULL
    )
    # Kept as written, so the log still says who after the user is gone (or "cli").
    actor_name = fields.CharField(max_length=64)
    action = fields.CharField(max_length=32)
    target = fields.CharField(max_length=100)
    data: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "admin_log"
