"""The live playbook library: every published version, and which is current.

The app reads playbooks everywhere (the tiles, a report's steps, the review,
the export), mostly in plain functions and templates; so the book keeps
every published version in memory (they are immutable and small: a few KB
each) and answers without the database. What changes it is a publish: the
process that publishes refreshes at once; another server behind the same
database sees new versions at its next :meth:`Book.fresh` (at most a second
later), and at once when a report names a version it has not seen.

:meth:`Book.start` makes sure the shipped playbooks (the source and the
product's defaults) are published: version 1 of each incident on a new
database, and a new version whenever a release changes what ships (the
company's and sites' layers merged over it again).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server import playbook_layers as layers
from server.models import PlaybookVersion, Report, User
from server.playbooks import Category, Incident, Library, LibraryOut

log = logging.getLogger("onsite.playbooks")

# One picture per shipped incident type, so that a tile is found by its look
# before its words are read (tests/browser/test_look.py); a company's own
# type picks its own, else its category's.
SHIPPED_ICONS = {
    "fire-alarm": "🔥", "personal-injury-dispute": "🤕", "robbery-fight": "👊",
    "theft": "🔓", "vehicle-damage": "🚗",
    "housekeeping-damage": "🧹", "machine-injury": "🚜", "pest-control-plant-animal": "🥀",
    "pest-control-poisoning": "☠️",
    "facility-collapse": "🚧", "lift-entrapment": "🛗", "pool-drowning": "🏊",
    "pool-hardware": "🔩", "power-cut-generator": "⚡️", "water-pipe": "💧",
    "group-complaint": "📢", "media-exposure": "📰", "resident-injury-death": "🚑",
    "show-flat": "🏠", "staff-injury-death": "👷",
    "other": "📝",
}  # fmt: skip
CATEGORY_ICONS = {
    "safety": "🛡️", "environment": "🌿", "facilities": "🔧", "customer": "👥", "general": "📝",
}  # fmt: skip
FRESH_SECONDS = 1.0
SHIPPED_NOTE = "随软件发布 · shipped with the app"


def is_version_id(version: str) -> bool:
    """A version's id, as a report keeps it; not the 12-hex-digit hash of the
    files that reports from before versions keep (which may be all digits)."""
    return version.isdigit() and len(version) <= 10


@dataclass(frozen=True)
class Published:
    """One version as the book keeps it."""

    id: int
    incident_type: str
    scope: int  # 0: the company's; else the site's id
    number: int
    layer: dict[str, Any]  # as published: what a revert or a re-merge takes again
    content: layers.Content
    incident: Incident


def product_layers(directory: Path) -> dict[str, layers.LayerIn]:
    """The product's defaults, by incident (``playbooks/product.yaml``)."""
    path = directory / "product.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {incident: layers.LayerIn.model_validate(layer) for incident, layer in data.items()}


class Book:
    """The library as guards and supervisors see it now, and as it was."""

    def __init__(self, shipped: Library, product: dict[str, layers.LayerIn]) -> None:
        self.shipped = shipped
        self.category_icons = {c.id: CATEGORY_ICONS.get(c.id, "❗") for c in shipped.categories}
        # The shipped playbook of each incident: the source with the product's defaults over it.
        self.base: dict[str, layers.Content] = {}
        for incident in shipped.incidents():
            content = layers.source_content(incident, SHIPPED_ICONS.get(incident.id, "❗"))
            if incident.id in product:
                content = layers.merge(
                    content,
                    product[incident.id],
                    "product",
                    incident_id=incident.id,
                    categories=self.category_icons,
                )
            self.base[incident.id] = content
        self.shipped_digest = {i: layers.digest(c) for i, c in self.base.items()}
        self.versions: dict[int, Published] = {}
        self.current: dict[tuple[str, int], int] = {}
        self.first: dict[str, int] = {}
        self.max_id = 0
        self._checked = 0.0
        self._library: Library | None = None

    # --- what the app reads (as a Library did) ---------------------------------

    @property
    def version(self) -> str:
        """Changes whenever any company playbook is published (an ETag)."""
        return f"{self.shipped.version}.{self.max_id}"

    @property
    def categories(self) -> tuple[Category, ...]:
        return self.library().categories

    def library(self) -> Library:
        """The company's current playbooks, by category."""
        if self._library is None:
            self._library = self._build(None)
        return self._library

    def _build(self, site_id: int | None) -> Library:
        by_category: dict[str, list[Incident]] = {c.id: [] for c in self.shipped.categories}
        for incident_id in self._incident_ids():
            incident = self.incident(incident_id, site_id)
            if incident is not None and incident.category in by_category:
                by_category[incident.category].append(incident)
        return Library(
            version=self.version,
            categories=tuple(
                Category(
                    id=c.id,
                    number=c.number,
                    title=c.title,
                    title_inferred=c.title_inferred,
                    note=c.note,
                    icon=c.icon,
                    incidents=tuple(sorted(by_category[c.id], key=lambda i: (i.order, i.id))),
                )
                for c in self.shipped.categories
            ),
        )

    def _incident_ids(self) -> list[str]:
        ids = list(self.base)
        ids += sorted({i for i, scope in self.current if scope == 0 and i not in self.base})
        return ids

    def incidents(self) -> tuple[Incident, ...]:
        return self.library().incidents()

    def incident(self, incident_id: str, site_id: int | None = None) -> Incident | None:
        """The current playbook of ``incident_id``, for ``site_id`` if given
        (its own layer over the company's, where it has one)."""
        if site_id is not None and (incident_id, site_id) in self.current:
            return self.versions[self.current[(incident_id, site_id)]].incident
        found = self.current.get((incident_id, 0))
        if found is not None:
            return self.versions[found].incident
        if incident_id in self.base:  # not started yet: the files as loaded
            return layers.incident(self.base[incident_id], "")
        return None

    def for_site(self, site_id: int | None) -> Library:
        """Every current playbook as a guard of ``site_id`` follows it."""
        if site_id is None or not any(scope == site_id for _, scope in self.current):
            return self.library()
        return self._build(site_id)

    def titles(self, incident_id: str) -> dict[str, str]:
        incident = self.incident(incident_id)
        if incident is None:
            return {"zh-CN": incident_id, "en": incident_id}
        return incident.title.as_dict()

    def shape(self, lang: str, site_id: int | None = None) -> LibraryOut:
        return self.for_site(site_id).shape(lang)

    def at(self, version: str) -> Published | None:
        """The published version ``version`` (an id, as reports keep it)."""
        if not is_version_id(version):
            return None
        return self.versions.get(int(version))

    def followed(self, incident_type: str, version: str) -> Incident | None:
        """The playbook a report of ``incident_type`` followed: its version,
        else (a report made before versions, whose version is the files'
        hash) the first version, as imported from those files."""
        found = self.at(version)
        if found is not None and found.incident_type == incident_type:
            return found.incident
        first = self.first.get(incident_type)
        if first is not None:
            return self.versions[first].incident
        return self.incident(incident_type)

    def of_report(self, report: Report) -> Incident | None:
        return self.followed(report.incident_type, report.playbook_version)

    def history(self, incident_type: str, scope: int) -> list[Published]:
        """Every version of one incident in one scope, newest first."""
        return sorted(
            (
                v
                for v in self.versions.values()
                if v.incident_type == incident_type and v.scope == scope
            ),
            key=lambda v: -v.number,
        )

    def latest(self, incident_type: str, scope: int) -> Published | None:
        found = self.current.get((incident_type, scope))
        return self.versions[found] if found is not None else None

    def lower(self, incident_type: str, scope: int) -> layers.Content | None:
        """What a layer of ``scope`` is merged over: the shipped playbook for
        the company's, the company's current for a site's (None: a new type)."""
        if scope == 0:
            return self.base.get(incident_type)
        company = self.latest(incident_type, 0)
        return company.content if company else self.base.get(incident_type)

    # --- keeping up with the database -------------------------------------------

    async def refresh(self) -> None:
        """Take in every version published since the last look."""
        rows = await PlaybookVersion.filter(id__gt=self.max_id).order_by("id")
        self._checked = time.monotonic()
        if not rows:
            return
        for row in rows:
            published = Published(
                id=row.id,
                incident_type=row.incident_type,
                scope=row.scope,
                number=row.number,
                layer=row.layer,
                content=row.content,
                incident=layers.incident(row.content, str(row.id), row.number),
            )
            self.versions[row.id] = published
            key = (row.incident_type, row.scope)
            now = self.current.get(key)
            if now is None or self.versions[now].number < row.number:
                self.current[key] = row.id
            if row.scope == 0 and (
                row.incident_type not in self.first
                or self.versions[self.first[row.incident_type]].number > row.number
            ):
                self.first[row.incident_type] = row.id
            self.max_id = max(self.max_id, row.id)
        self._library = None

    async def fresh(self, version: str | None = None) -> None:
        """Refresh if the last look is over a second old, or ``version`` is unknown."""
        unknown = (
            version is not None and is_version_id(version) and int(version) not in self.versions
        )
        if unknown or time.monotonic() - self._checked > FRESH_SECONDS:
            await self.refresh()

    async def start(self) -> None:
        """Publish what ships where the database lacks it (a new database, a
        new release), then take in every version."""
        await self.refresh()
        for incident_id in self.base:
            latest = self.latest(incident_id, 0)
            if (
                latest is not None
                and latest.content.get("shipped") == self.shipped_digest[incident_id]
            ):
                continue
            layer = layers.parse_layer(latest.layer) if latest else layers.LayerIn()
            try:
                await self.publish(incident_id, 0, layer, None, SHIPPED_NOTE)
            except IntegrityError:  # another server, starting too, published it
                await self.refresh()
            except Exception:  # a company layer that no longer fits: keep its version
                log.exception(
                    "playbook %s: the company's layer does not fit the new release", incident_id
                )
        await self.refresh()

    async def publish(
        self,
        incident_type: str,
        scope: int,
        layer: layers.LayerIn,
        author: User | None,
        note: str,
    ) -> Published:
        """Merge ``layer`` over what is below it and publish it as a new
        version; a company version also makes a new version of every site
        layer over it. Call inside no transaction: it makes its own."""
        origin: layers.Origin = "company" if scope == 0 else "site"
        lower = self.lower(incident_type, scope)
        order = 100 + len(self._incident_ids())
        content = layers.merge(
            lower,
            layer,
            origin,
            incident_id=incident_type,
            categories=self.category_icons,
            order=order,
        )
        content["shipped"] = self.shipped_digest.get(incident_type, "")
        async with in_transaction():
            row = await self._write(incident_type, scope, layer.dump(), content, author, note, None)
            if scope == 0:
                for (other, site_id), vid in list(self.current.items()):
                    if other != incident_type or site_id == 0:
                        continue
                    site_layer = self.versions[vid].layer
                    site_content = layers.merge(
                        content,
                        layers.parse_layer(site_layer),
                        "site",
                        incident_id=incident_type,
                        categories=self.category_icons,
                    )
                    site_content["shipped"] = content["shipped"]
                    number = self.versions[vid].number
                    await self._write(
                        incident_type,
                        site_id,
                        site_layer,
                        site_content,
                        author,
                        f"公司版本 v{row.number} · over company version {row.number}",
                        row.id,
                        number + 1,
                    )
        await self.refresh()
        return self.versions[row.id]

    async def _write(
        self,
        incident_type: str,
        scope: int,
        layer: dict[str, Any],
        content: layers.Content,
        author: User | None,
        note: str,
        base_id: int | None,
        number: int | None = None,
    ) -> PlaybookVersion:
        if number is None:
            latest = await (
                PlaybookVersion.filter(incident_type=incident_type, scope=scope)
                .order_by("-number")
                .first()
            )
            number = latest.number + 1 if latest else 1
        if scope and base_id is None:
            company = self.latest(incident_type, 0)
            base_id = company.id if company else None
        return await PlaybookVersion.create(
            incident_type=incident_type,
            scope=scope,
            site_id=scope or None,
            number=number,
            layer=layer,
            content=content,
            shipped=content.get("shipped", ""),
            base_id=base_id,
            note=note,
            author_id=author.id if author else None,
        )


def load(directory: Path | None = None) -> Book:
    """The book over the shipped playbooks at ``directory`` (not started)."""
    from server import playbooks

    shipped = playbooks.load(directory) if directory else playbooks.load()
    return Book(shipped, product_layers(directory or playbooks.DEFAULT_DIR))


__all__ = ["Book", "Published", "load"]
