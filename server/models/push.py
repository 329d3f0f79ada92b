"""Web Push: devices, the durable queue of messages, and the log of attempts."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from server.models.people import User
from server.models.reports import Report


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    GONE = "gone"


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
