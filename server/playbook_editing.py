"""Editing the library: drafts, publishing, versions, the diff, import and export.

Editing happens in a draft, one per incident and layer (the company's, or a
site's): putting a draft replaces it, so a resend is harmless. Publishing
merges the draft over what is below it into a new version, with who, when
and a note, in the admin log too; reverting publishes an earlier version's
layer again. Nothing published is ever changed or deleted.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic import Field
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server import audit
from server import playbook_layers as layers
from server.access import require_playbook_editor, require_site
from server.context import Context
from server.errors import ApiError, Msg, invalid
from server.models import PlaybookDraft, PlaybookVersion, Site, User
from server.playbook_book import Published
from server.playbooks import PlaybookError, check_export
from server.schemas import Person, Shape, Timestamp

INCIDENT_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
RESERVED = {"import", "export"}  # paths beside /api/playbooks/{incident}


class PublishIn(Shape):
    """A publish: the note says what changed and why (in the admin log too)."""

    note: str = Field(min_length=1, max_length=500, description="what changed, and why")
    revert_to: str | None = Field(
        default=None,
        max_length=12,
        description="publish this earlier version's layer again (a revert) instead of the draft",
    )


class VersionSummary(Shape):
    """One published version: who, when and why."""

    id: str
    number: int
    incident: str
    site: str | None = Field(
        description="the site's code for a site's version; null: the company's"
    )
    note: str
    author: Person | None
    at: Timestamp
    base: str | None = Field(description="a site's version: the company version under it")


class VersionOut(VersionSummary):
    """One version as it was: its layer and the merged playbook, hidden steps included."""

    layer: dict[str, Any]
    content: dict[str, Any]


class VersionList(Shape):
    """Every version of a playbook in one layer, newest first."""

    incident: str
    site: str | None
    current: str | None
    versions: list[VersionSummary]


class DraftOut(Shape):
    """A layer being edited, and the playbook it would publish."""

    incident: str
    site: str | None
    draft: bool = Field(description="false: no draft yet, the layer shown is the published one")
    layer: dict[str, Any]
    below: dict[str, Any] | None = Field(
        description="what the layer is merged over (null: a new type)"
    )
    preview: dict[str, Any]
    published: str | None = Field(description="the version id now published in this layer, if any")
    updated_at: Timestamp | None
    updated_by: Person | None


class DiffOut(Shape):
    """What changed between two versions, as a guard would see it."""

    incident: str
    before: str
    after: str
    changes: list[dict[str, Any]]


class ImportOut(Shape):
    """What an import wrote: company drafts, to look over and publish."""

    drafted: list[str] = Field(description="the incidents whose company draft the import wrote")


# --- where a layer is ------------------------------------------------------------------


async def _site(code: str | None) -> Site | None:
    if code is None:
        return None
    site = await Site.get_or_none(code=code)
    if site is None:
        raise invalid(
            "site", Msg("no site {site!r}.", site=code), code="unknown_site", problem="unknown"
        )
    return site


def _check_id(incident: str) -> None:
    if not INCIDENT_ID.match(incident) or len(incident) > 64 or incident in RESERVED:
        raise invalid(
            "incident",
            Msg("{incident!r} is not an incident id (a-z, 0-9 and dashes).", incident=incident),
            problem="not an id",
        )


def _known(ctx: Context, incident: str) -> bool:
    return ctx.library.incident(incident) is not None


async def _editable(ctx: Context, user: User, incident: str, code: str | None) -> Site | None:
    """The layer's site (None: the company's), once ``user`` may edit it."""
    site = await _site(code)
    await require_playbook_editor(user, site)
    _check_id(incident)
    await ctx.library.fresh()
    if site is not None and not _known(ctx, incident):
        raise invalid(
            "incident",
            Msg("no playbook {incident!r} for a site to add to.", incident=incident),
            code="unknown_incident_type",
            problem="unknown",
        )
    return site


def _scope(site: Site | None) -> int:
    return site.id if site else 0


# --- drafts ----------------------------------------------------------------------------


async def get_draft(ctx: Context, user: User, incident: str, code: str | None) -> DraftOut:
    site = await _editable(ctx, user, incident, code)
    if site is None and not _known(ctx, incident):
        draft = await PlaybookDraft.get_or_none(incident_type=incident, scope=0)
        if draft is None:
            raise ApiError(404, "not_found", Msg("No playbook {incident!r}.", incident=incident))
    return await _draft_out(ctx, incident, site)


async def put_draft(
    ctx: Context, user: User, incident: str, code: str | None, layer: layers.LayerIn
) -> DraftOut:
    """Replace the layer's draft; it must merge (a 422 names what does not)."""
    site = await _editable(ctx, user, incident, code)
    scope = _scope(site)
    if site is None and not _known(ctx, incident) and not layer.dump():
        # Nothing by that id, and nothing said to make it: a new type starts
        # with at least its title and category.
        raise ApiError(404, "not_found", Msg("No playbook {incident!r}.", incident=incident))
    _merge(ctx, incident, scope, layer)
    async with in_transaction():
        updated = await PlaybookDraft.filter(incident_type=incident, scope=scope).update(
            layer=layer.dump(), updated_by_id=user.id
        )
        if not updated:
            try:
                await PlaybookDraft.create(
                    incident_type=incident,
                    scope=scope,
                    site=site,
                    layer=layer.dump(),
                    updated_by=user,
                )
            except IntegrityError:  # the same draft put twice at once: the last stands
                await PlaybookDraft.filter(incident_type=incident, scope=scope).update(
                    layer=layer.dump(), updated_by_id=user.id
                )
    return await _draft_out(ctx, incident, site)


async def discard_draft(ctx: Context, user: User, incident: str, code: str | None) -> DraftOut:
    """Drop the draft: the layer goes back to what is published."""
    site = await _editable(ctx, user, incident, code)
    await PlaybookDraft.filter(incident_type=incident, scope=_scope(site)).delete()
    if site is None and not _known(ctx, incident):
        raise ApiError(404, "not_found", Msg("No playbook {incident!r}.", incident=incident))
    return await _draft_out(ctx, incident, site)


def _merge(ctx: Context, incident: str, scope: int, layer: layers.LayerIn) -> layers.Content:
    book = ctx.library
    return layers.merge(
        book.lower(incident, scope),
        layer,
        "company" if scope == 0 else "site",
        incident_id=incident,
        categories=book.category_icons,
    )


async def _draft_out(ctx: Context, incident: str, site: Site | None) -> DraftOut:
    scope = _scope(site)
    book = ctx.library
    draft = await PlaybookDraft.get_or_none(incident_type=incident, scope=scope).prefetch_related(
        "updated_by"
    )
    published = book.latest(incident, scope)
    if draft is not None:
        layer = draft.layer
    elif published is not None:
        layer = published.layer
    else:
        layer = {}
    parsed = layers.parse_layer(layer)
    return DraftOut(
        incident=incident,
        site=site.code if site else None,
        draft=draft is not None,
        layer=parsed.dump(),
        below=book.lower(incident, scope),
        preview=_merge(ctx, incident, scope, parsed),
        published=str(published.id) if published else None,
        updated_at=draft.updated_at if draft else None,
        updated_by=Person.of(draft.updated_by) if draft else None,
    )


# --- publishing -------------------------------------------------------------------------


async def publish(
    ctx: Context, user: User, incident: str, code: str | None, body: PublishIn
) -> VersionOut:
    """The draft (or, with ``revert_to``, an earlier version's layer) as a new version."""
    site = await _editable(ctx, user, incident, code)
    scope = _scope(site)
    book = ctx.library
    if body.revert_to is not None:
        earlier = book.at(body.revert_to)
        if earlier is None or earlier.incident_type != incident or earlier.scope != scope:
            raise invalid(
                "revert_to",
                Msg("no version {version!r} of this playbook here.", version=body.revert_to),
                problem="unknown",
            )
        layer = layers.parse_layer(earlier.layer)
    else:
        draft = await PlaybookDraft.get_or_none(incident_type=incident, scope=scope)
        if draft is None:
            if site is None and not _known(ctx, incident):
                raise ApiError(
                    404, "not_found", Msg("No playbook {incident!r}.", incident=incident)
                )
            raise ApiError(
                409, "no_draft", "There is no draft to publish: edit the playbook first."
            )
        layer = layers.parse_layer(draft.layer)
    try:
        published = await book.publish(incident, scope, layer, user, body.note)
    except IntegrityError:
        await book.refresh()
        raise ApiError(
            409, "conflict", "Someone published this playbook at the same moment: look again."
        ) from None
    async with in_transaction():
        if body.revert_to is None:
            await PlaybookDraft.filter(incident_type=incident, scope=scope).delete()
        await audit.record(
            user,
            "playbook_published",
            incident if site is None else f"{incident}@{site.code}",
            version=published.number,
            note=body.note,
            **(
                {"reverted_to": book.versions[int(body.revert_to)].number} if body.revert_to else {}
            ),
        )
    ctx.committed()
    return await _version_out(published)


# --- reading versions ----------------------------------------------------------------------


async def _readable(ctx: Context, user: User, incident: str, code: str | None) -> Site | None:
    site = await _site(code)
    if site is not None:
        await require_site(user, site)
    await ctx.library.fresh()
    if not _known(ctx, incident):
        raise ApiError(404, "not_found", Msg("No playbook {incident!r}.", incident=incident))
    return site


async def list_versions(ctx: Context, user: User, incident: str, code: str | None) -> VersionList:
    site = await _readable(ctx, user, incident, code)
    scope = _scope(site)
    history = ctx.library.history(incident, scope)
    rows = {
        r.id: r
        for r in await PlaybookVersion.filter(id__in=[v.id for v in history]).prefetch_related(
            "author", "site"
        )
    }
    latest = ctx.library.latest(incident, scope)
    return VersionList(
        incident=incident,
        site=site.code if site else None,
        current=str(latest.id) if latest else None,
        versions=[_summary(rows[v.id]) for v in history if v.id in rows],
    )


async def get_version(ctx: Context, user: User, incident: str, version: str) -> VersionOut:
    await ctx.library.fresh(version)
    if re.fullmatch(r"v[0-9]{1,9}", version):  # v3: the company's third
        number = int(version[1:])
        history = ctx.library.history(incident, 0)
        found = next((v for v in history if v.number == number), None)
    else:
        found = ctx.library.at(version)
    if found is None or found.incident_type != incident:
        raise ApiError(
            404, "not_found", Msg("No version {version!r} of this playbook.", version=version)
        )
    if found.scope:
        site = await Site.get(id=found.scope)
        await require_site(user, site)
    return await _version_out(found)


async def diff(ctx: Context, user: User, incident: str, before: str, after: str) -> DiffOut:
    a = await get_version(ctx, user, incident, before)
    b = await get_version(ctx, user, incident, after)
    return DiffOut(
        incident=incident, before=a.id, after=b.id, changes=layers.diff(a.content, b.content)
    )


def _summary(row: PlaybookVersion) -> VersionSummary:
    return VersionSummary(
        id=str(row.id),
        number=row.number,
        incident=row.incident_type,
        site=row.site.code if row.site else None,
        note=row.note,
        author=Person.of(row.author),
        at=row.created_at,
        base=str(row.base_id) if row.base_id else None,
    )


async def _version_out(published: Published) -> VersionOut:
    row = await PlaybookVersion.get(id=published.id).prefetch_related("author", "site")
    return VersionOut(**_summary(row).model_dump(), layer=row.layer, content=row.content)


# --- import and export ------------------------------------------------------------------------


def export_library(ctx: Context) -> str:
    """Every current company playbook, as YAML in the schema of ``playbooks/``."""
    book = ctx.library
    data = {
        "categories": [
            {
                "id": c.id,
                "number": c.number,
                "title": c.title.as_dict(),
                "title_inferred": c.title_inferred,
                "icon": c.icon,
                "note": c.note,
            }
            for c in book.shipped.categories
        ],
        "incidents": [layers.export(_content(ctx, i.id)) for i in book.incidents()],
    }
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def export_one(ctx: Context, incident: str) -> str:
    if not _known(ctx, incident):
        raise ApiError(404, "not_found", Msg("No playbook {incident!r}.", incident=incident))
    return yaml.safe_dump(
        layers.export(_content(ctx, incident)), allow_unicode=True, sort_keys=False, width=100
    )


def _content(ctx: Context, incident: str) -> layers.Content:
    latest = ctx.library.latest(incident, 0)
    if latest is not None:
        return latest.content
    return ctx.library.base[incident]


async def import_library(ctx: Context, user: User, body: bytes) -> ImportOut:
    """An export (one playbook or the whole library) as company drafts, to
    look over and publish: a step whose words match one below keeps it and
    its origin; the rest are new; what the import leaves out is hidden."""
    await require_playbook_editor(user, None)
    try:
        data = yaml.safe_load(body.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise invalid(
            "body", Msg("not YAML: {why}", why=str(exc).splitlines()[0]), problem="not YAML"
        ) from None
    try:
        incidents = check_export(data, [c.id for c in ctx.library.shipped.categories])
    except PlaybookError as exc:
        raise ApiError(
            422,
            "invalid",
            Msg("The import is not a valid playbook export: {why}", why="; ".join(exc.errors[:5])),
            fields=[{"field": e.split(": ", 1)[0], "message": e} for e in exc.errors],
        ) from None
    await ctx.library.fresh()
    drafted = []
    for item in incidents:
        lower = ctx.library.lower(item["id"], 0)
        layer = layers.parse_layer(layers.layer_from_export(item, lower))
        await put_draft(ctx, user, item["id"], None, layer)
        drafted.append(item["id"])
    return ImportOut(drafted=drafted)
