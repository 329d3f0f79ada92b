"""Sites, the people in them and their emergency contacts: read by their
members, written by admins."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any, TypeVar, cast

from pydantic import BaseModel, Field, field_validator
from tortoise.transactions import in_transaction

from server import audit
from server.access import require_site, sites_visible_to
from server.context import Context
from server.errors import ApiError, Msg, invalid
from server.models import AlertChannel, ContactKind, Role, Site, SiteContact, User
from server.schemas import Shape, SiteRef, Written


class StaffMember(Shape):
    username: str
    display_name: str
    role: Role


class SiteList(Shape):
    """The sites the user belongs to, by code."""

    sites: list[SiteRef]


class SiteOut(Shape):
    """A site, its active staff and its emergency contacts."""

    code: str
    name: str
    staff: list[StaffMember]
    contacts: list[ContactOut]


async def list_sites(user: User) -> SiteList:
    """The sites ``user`` belongs to (every site, for an admin)."""
    return SiteList(sites=[SiteRef.of(s) for s in await visible_sites(user)])


async def visible_sites(user: User) -> list[Site]:
    """The sites ``user`` belongs to (every site, for an admin), by code."""
    return list(await sites_visible_to(user).order_by("code"))


async def member_sites(user: User) -> list[Site]:
    """The sites ``user`` is a member of, by code (an admin's own too: what a
    phone reports from and calls for)."""
    return list(await user.sites.all().order_by("code"))


async def get_site(user: User, code: str) -> SiteOut:
    """One site and its staff; only for its members and admins."""
    site = await Site.get_or_none(code=code)
    if site is None:
        raise ApiError(404, "not_found", "No such site.")
    await require_site(user, site)
    staff = await site.users.filter(is_active=True).order_by("username")
    return SiteOut(
        code=site.code,
        name=site.name,
        contacts=[ContactOut.of(c) for c in await contacts_of(site)],
        staff=[
            StaffMember(username=u.username, display_name=u.display_name, role=u.role)
            for u in staff
        ],
    )


# --- administration: sites and their emergency contacts --------------------------

SITE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# What a phone dials: digits, with + - and spaces as people write numbers.
PHONE = re.compile(r"[0-9+\- ]{3,32}")


class SiteIn(BaseModel):
    """A site's name, as staff know it."""

    name: str = Field(min_length=1, max_length=200)


class ContactIn(BaseModel):
    """One of a site's own emergency numbers, and the incidents it is for."""

    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=3, max_length=32, description="digits, + - and spaces")
    kind: ContactKind
    incident_types: list[str] = Field(
        default_factory=list, max_length=50, description="incident type ids (playbook ids)"
    )

    @field_validator("phone")
    @classmethod
    def _dialable(cls, value: str) -> str:
        value = value.strip()
        if not PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 3:
            raise ValueError("digits, +, - and spaces only, at least 3 digits")
        return value


class ContactOut(Shape):
    """An emergency number of a site."""

    id: uuid.UUID
    name: str
    phone: str
    kind: ContactKind
    incident_types: list[str]

    @classmethod
    def of(cls, contact: SiteContact) -> ContactOut:
        return cls(
            id=contact.id,
            name=contact.name,
            phone=contact.phone,
            kind=contact.kind,
            incident_types=list(contact.incident_types or []),
        )


class SiteAdminOut(Shape):
    """A site with its emergency contacts."""

    code: str
    name: str
    contacts: list[ContactOut]


async def contacts_of(site: Site) -> list[SiteContact]:
    return list(await SiteContact.filter(site_id=site.id).order_by("kind", "name"))


async def site_admin_out(site: Site) -> SiteAdminOut:
    return SiteAdminOut(
        code=site.code,
        name=site.name,
        contacts=[ContactOut.of(c) for c in await contacts_of(site)],
    )


async def put_site(actor: User | None, code: str, body: SiteIn) -> Written[SiteAdminOut]:
    """Add the site ``code`` (201) or rename it (200); the same name again changes nothing."""
    if not SITE_CODE.fullmatch(code):
        raise invalid("code", "1 to 32 letters, digits, - or _, starting with a letter or digit.")
    name = body.name.strip()
    if not name:
        raise invalid("name", "a site needs a name.")
    found = await Site.get_or_none(code=code)
    if found is not None and found.name == name:
        return Written(await site_admin_out(found))
    async with in_transaction():
        if found is None:
            site = await Site.create(code=code, name=name)
            await audit.record(actor, "site.create", code, name=name)
        else:
            await Site.filter(id=found.id).update(name=name)
            await audit.record(actor, "site.rename", code, name=[found.name, name])
            site = await Site.get(id=found.id)
    return Written(await site_admin_out(site), created=found is None)


async def site_or_404(code: str) -> Site:
    """The site with ``code``, or a 404 (the API's writes under a site)."""
    site = await Site.get_or_none(code=code)
    if site is None:
        raise ApiError(404, "not_found", "No such site.")
    return site


async def site_by_code(code: str) -> Site:
    """The site a report or a filter names by ``code``, or a 422 on ``site``."""
    site = await Site.get_or_none(code=code)
    if site is None:
        raise invalid(
            "site", Msg("no site {site!r}.", site=code), code="unknown_site", problem="unknown"
        )
    return site


def _contact_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ApiError(422, "invalid", "The contact id is not a UUID.") from None


async def put_contact(
    ctx: Context, actor: User, code: str, contact_id: str, body: ContactIn
) -> Written[ContactOut]:
    """Add or change one of the site's emergency numbers (under the client's id)."""
    site = await site_or_404(code)
    cid = _contact_id(contact_id)
    types = list(dict.fromkeys(body.incident_types))
    for i, incident in enumerate(types):
        if ctx.library.incident(incident) is None:
            raise invalid(
                f"incident_types.{i}", Msg("no incident type {incident!r}.", incident=incident)
            )
    wanted: dict[str, Any] = {
        "name": body.name.strip(),
        "phone": body.phone,
        "kind": body.kind,
        "incident_types": types,
    }
    found = await SiteContact.get_or_none(id=cid)
    if found is not None and found.site_id != site.id:
        raise ApiError(409, "conflict", "This contact id belongs to another site.")
    if found is not None and all(getattr(found, k) == v for k, v in wanted.items()):
        return Written(ContactOut.of(found))
    logged = {**wanted, "kind": body.kind.value}
    async with in_transaction():
        if found is None:
            contact = await SiteContact.create(id=cid, site_id=site.id, **wanted)
            await audit.record(actor, "contact.create", code, id=str(cid), **logged)
        else:
            # A queryset update skips auto_now: the time is set here.
            await SiteContact.filter(id=cid).update(**wanted, updated_at=ctx.clock())
            await audit.record(actor, "contact.change", code, id=str(cid), **logged)
            contact = await SiteContact.get(id=cid)
    return Written(ContactOut.of(contact), created=found is None)


async def delete_contact(actor: User, code: str, contact_id: str) -> None:
    """Remove one of the site's numbers; removing it again is no error."""
    site = await site_or_404(code)
    cid = _contact_id(contact_id)
    found = await SiteContact.get_or_none(id=cid, site_id=site.id)
    if found is None:
        return
    async with in_transaction():
        await found.delete()
        await audit.record(actor, "contact.delete", code, id=str(cid), name=found.name)


# --- the administration pages' reads ---------------------------------------------

M = TypeVar("M", SiteContact, AlertChannel)


async def member_site(user: User, code: str) -> Site | None:
    """The site with ``code`` (None if there is none), if ``user`` may see it (else 403)."""
    site = await Site.get_or_none(code=code)
    if site is not None:
        await require_site(user, site)
    return site


async def site_counts(sites: list[Site]) -> tuple[Counter[int], dict[int, int]]:
    """How many contacts and how many active staff each of ``sites`` has, by site id."""
    ids = [s.id for s in sites]
    # values_list(flat=True) gives bare values; tortoise types them as tuples.
    contacts = Counter(
        cast(
            "list[int]", await SiteContact.filter(site_id__in=ids).values_list("site_id", flat=True)
        )
    )
    staff = {s.id: await s.users.filter(is_active=True).count() for s in sites}
    return contacts, staff


async def staff_of(site: Site) -> list[User]:
    """Everyone of ``site``, those who may log in first, by username."""
    return list(await site.users.all().order_by("-is_active", "username"))


async def row_of_site(model: type[M], site: Site, raw: str) -> M | None:
    """The contact or channel of ``site`` with the id ``raw``; None if there is
    none (or ``raw`` is not an id)."""
    try:
        return await model.get_or_none(id=uuid.UUID(raw), site_id=site.id)
    except ValueError:
        return None
