"""通讯录: the emergency numbers a phone offers, from the sites of its user.

Each site's own numbers (its lift company's 24-hour line, the property
office …), grouped by kind for the contact book, and those a report flow
offers beside 110/120/119 for its incident type. Admins keep the numbers
(:mod:`server.sites`).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.models import ContactKind, Site, SiteContact

# The order of the book's groups: as the enum lists them, the lift company first.
KINDS = list(ContactKind)

Book = list[tuple[Site, list[tuple[ContactKind, list[SiteContact]]]]]


@dataclass(frozen=True)
class SiteCall:
    """One number to call, and the site it belongs to (for a guard of several sites)."""

    site: Site
    contact: SiteContact


async def contacts_by_site(sites: list[Site]) -> dict[int, list[SiteContact]]:
    """The contacts of ``sites`` in one query, by site id: by kind, then by name."""
    found: dict[int, list[SiteContact]] = {site.id: [] for site in sites}
    for contact in await SiteContact.filter(site_id__in=list(found)).order_by("name"):
        found[contact.site_id].append(contact)
    for contacts in found.values():
        contacts.sort(key=lambda c: KINDS.index(c.kind))  # stable: names stay in order
    return found


async def calls_for(sites: list[Site], incident_id: str) -> list[SiteCall]:
    """The numbers of ``sites`` (the user's) that serve this incident type
    (the lift company in 电梯困人), site by site."""
    found = await contacts_by_site(sites)
    return [
        SiteCall(site, contact)
        for site in sites
        for contact in found[site.id]
        if incident_id in (contact.incident_types or [])
    ]


async def book(sites: list[Site]) -> Book:
    """Every number of each of ``sites``, grouped by kind (kinds without one left out)."""
    found = await contacts_by_site(sites)
    pages: Book = []
    for site in sites:
        groups = [(kind, [c for c in found[site.id] if c.kind == kind]) for kind in KINDS]
        pages.append((site, [(kind, contacts) for kind, contacts in groups if contacts]))
    return pages
