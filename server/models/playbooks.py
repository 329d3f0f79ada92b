"""The company's playbook library: each layer's draft, and every published version.

The source's playbooks (``playbooks/``) and the product's defaults ship with
the app and are never stored; what is stored is what a company and its sites
add over them. A version is immutable: the layer as it was published and the
merged playbook it gave, which a report names by id for ever.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from server.models.sites import Site
from server.models.staff import User


class PlaybookDraft(Model):
    """The layer being edited for one incident: the company's (no site) or a site's."""

    id = fields.IntField(primary_key=True)
    incident_type = fields.CharField(max_length=64)
    # 0 for the company's layer, else the site's id: unique even where NULLs are not.
    scope = fields.IntField(default=0)
    site: fields.ForeignKeyNullableRelation[Site] = fields.ForeignKeyField(
        "onsite.Site", related_name="playbook_drafts", null=True, on_delete=fields.CASCADE
    )
    layer: fields.JSONField[dict[str, Any]] = fields.JSONField()
    updated_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="playbook_drafts", null=True, on_delete=fields.SET_NULL
    )
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "playbook_draft"
        unique_together = (("incident_type", "scope"),)


class PlaybookVersion(Model):
    """One published playbook, as it was: never changed after it is written."""

    id = fields.IntField(primary_key=True)
    incident_type = fields.CharField(max_length=64, db_index=True)
    scope = fields.IntField(default=0)
    site: fields.ForeignKeyNullableRelation[Site] = fields.ForeignKeyField(
        "onsite.Site", related_name="playbook_versions", null=True, on_delete=fields.CASCADE
    )
    # 1, 2, 3 … within the incident and scope.
    number = fields.IntField()
    # The layer as published (what a revert publishes again).
    layer: fields.JSONField[dict[str, Any]] = fields.JSONField()
    # The merged playbook a guard followed: every step with its key and origin.
    content: fields.JSONField[dict[str, Any]] = fields.JSONField()
    # The shipped playbooks it was merged over (a hash): a new release re-merges.
    shipped = fields.CharField(max_length=16)
    # A site's version: the company version under it.
    base: fields.ForeignKeyNullableRelation[PlaybookVersion] = fields.ForeignKeyField(
        "onsite.PlaybookVersion", related_name="over", null=True, on_delete=fields.RESTRICT
    )
    base_id: int | None
    note = fields.TextField(default="", db_default="")
    author: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "onsite.User", related_name="playbook_versions", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "playbook_version"
        unique_together = (("incident_type", "scope", "number"),)
