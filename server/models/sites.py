"""Sites (estates) and their own emergency contacts."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from server.models.reports import Report
    from server.models.staff import User


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


class ContactKind(StrEnum):
    """Who a site's emergency contact is."""

    LIFT = "lift"  # 电梯维保
    PROPERTY_OFFICE = "property_office"  # 物业服务中心
    WATER = "water"
    POWER = "power"
    GAS = "gas"
    SECURITY = "security"  # the security company
    OTHER = "other"


class SiteContact(Model):
    """One of a site's own emergency numbers (its lift company's 24-hour line)."""

    id = fields.UUIDField(primary_key=True)
    site: fields.ForeignKeyRelation[Site] = fields.ForeignKeyField(
        "onsite.Site", related_name="contacts", on_delete=fields.CASCADE
    )
    site_id: int
    name = fields.CharField(max_length=100)
    phone = fields.CharField(max_length=32)
    kind = fields.CharEnumField(ContactKind, max_length=20)
    # Ids of the incident types whose report flow offers this number.
    incident_types: fields.JSONField[list[str]] = fields.JSONField(default=list, db_default="[]")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "site_contact"
