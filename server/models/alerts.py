"""Alerts: Web Push devices, sites' work-chat robots (WeCom, DingTalk), the durable
queue of messages to either, and the log of attempts."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from server.models.reports import Report, Severity
from server.models.sites import Site
from server.models.staff import User


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


class ChannelKind(StrEnum):
    WECOM = "wecom"  # 企业微信 group robot
    DINGTALK = "dingtalk"  # 钉钉 custom robot


class ChannelEvent(StrEnum):
    """What besides new reports a channel is told of."""

    ESCALATED = "escalated"
    REPAIRED = "repaired"
    OVERDUE = "overdue"


class AlertChannel(Model):
    """A site's work-chat group robot that alerts reach, beside Web Push."""

    id = fields.UUIDField(primary_key=True)
    site: fields.ForeignKeyRelation[Site] = fields.ForeignKeyField(
        "onsite.Site", related_name="channels", on_delete=fields.CASCADE
    )
    site_id: int
    kind = fields.CharEnumField(ChannelKind, max_length=16)
    name = fields.CharField(max_length=100)
    # The robot's webhook: its key (WeCom) or access_token (DingTalk) is in it,
    # so it is shown whole only to admins.
    webhook_url = fields.CharField(max_length=1000)
    # DingTalk 加签: the signing secret, when the robot uses it.
    secret = fields.CharField(max_length=200, default="", db_default="")
    # New reports at or above this severity; null: no new reports.
    min_severity = fields.CharEnumField(Severity, max_length=16, null=True)
    events: fields.JSONField[list[str]] = fields.JSONField(default=list, db_default="[]")
    language = fields.CharField(max_length=8, default="zh-CN", db_default="zh-CN")
    active = fields.BooleanField(default=True, db_default=True)
    last_sent_at = fields.DatetimeField(null=True)
    # What the service said the last time it refused (its errcode and errmsg).
    last_error = fields.CharField(max_length=500, default="", db_default="")
    last_error_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "alert_channel"


class DeliveryKind(StrEnum):
    """Whom a delivery row is for: a person's device, or a site's robot."""

    DEVICE = "device"  # Web Push: the endpoint is the subscription's push URL
    ROBOT = "robot"  # a work-chat robot: the endpoint is "<kind>:<channel id>"

    @classmethod
    def of(cls, endpoint: str) -> DeliveryKind:
        """The kind of the row with ``endpoint``: the one place that reads it."""
        return cls.ROBOT if endpoint.startswith(_ROBOT_PREFIXES) else cls.DEVICE


# A device's endpoint is an https URL (or http to loopback), never one of these.
_ROBOT_PREFIXES = tuple(f"{kind.value}:" for kind in ChannelKind)


class PushDelivery(Model):
    """A push message waiting for, or done with, delivery: survives restarts.

    Rows for devices and for robots share the table; :attr:`kind` tells them
    apart by the endpoint, which a row keeps when its subscription or channel
    is deleted (both links are then set null).
    """

    id = fields.BigIntField(primary_key=True)
    subscription: fields.ForeignKeyNullableRelation[PushSubscription] = fields.ForeignKeyField(
        "onsite.PushSubscription", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    report: fields.ForeignKeyNullableRelation[Report] = fields.ForeignKeyField(
        "onsite.Report", related_name="push_deliveries", null=True, on_delete=fields.SET_NULL
    )
    # A message to a work-chat robot instead of a device (subscription is null).
    channel: fields.ForeignKeyNullableRelation[AlertChannel] = fields.ForeignKeyField(
        "onsite.AlertChannel", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    channel_id: uuid.UUID | None
    # A device's push URL, or a robot named by kind and id (robot_endpoint),
    # never by its webhook, whose key whoever reads the table would have.
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

    @property
    def kind(self) -> DeliveryKind:
        """A device's message or a robot's."""
        return DeliveryKind.of(self.endpoint)

    @staticmethod
    def robot_endpoint(channel: AlertChannel) -> str:
        """The endpoint of a row for ``channel``."""
        return f"{channel.kind.value}:{channel.id}"


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
