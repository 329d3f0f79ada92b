"""通讯录: the emergency numbers of the user's sites (110/120/119 and each
site's own, by kind), and the ones a report flow offers for its incident."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.models import ContactKind, Site, SiteContact
from server.templating import render

# The order of the page's groups: as the enum lists them, the lift company first.
KINDS = list(ContactKind)


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


async def contacts_page(request: Request) -> Response:
    """Every number of each of the user's sites, grouped by kind; kept offline."""
    user = request.state.user
    if user is None:
        return RedirectResponse("/login?next=/contacts", status_code=303)
    sites = await user.sites.all().order_by("code")
    found = await contacts_by_site(sites)
    book = []
    for site in sites:
        groups = [(kind, [c for c in found[site.id] if c.kind == kind]) for kind in KINDS]
        book.append((site, [(kind, contacts) for kind, contacts in groups if contacts]))
    return render(request, "contacts.html", book=book)


routes = [
    Route("/contacts", contacts_page, methods=["GET"], include_in_schema=False),
]
