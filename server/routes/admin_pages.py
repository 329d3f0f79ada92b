"""The administration pages: people (``/admin``), sites with their emergency
contacts and alert channels (``/admin/sites``) and the admin log (``/admin/log``).

Admins change things from these pages, every write through the API
(``admin.js``); a supervisor sees the people, contacts and channels of their
own sites, read-only. The pages read through the services (:mod:`server.sites`,
:mod:`server.users`, :mod:`server.audit`); a channel's webhook only ever masked
(:class:`server.alert_channels.ChannelOut`).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server import audit, sites, users
from server.access import MANAGERS, administers, page_for
from server.alert_channels import ChannelOut, channels_of
from server.errors import N_, ApiError, Msg
from server.models import (
    AlertChannel,
    ChannelEvent,
    ChannelKind,
    ContactKind,
    Role,
    Severity,
    Site,
    SiteContact,
    User,
)
from server.templating import render

ADMINS = (Role.ADMIN,)
# Entries of the admin log on one page; "更早" asks for the next ones.
LOG_PAGE = 50


@page_for(*MANAGERS)
async def people(request: Request, user: User) -> Response:
    """Everyone (admins, with the form to add a person), or the staff of a
    supervisor's sites (read-only); filtered by one site."""
    visible = await sites.visible_sites(user)
    # An unknown or foreign site in the address shows everyone visible, not an error.
    wanted = request.query_params.get("site") or None
    site = wanted if wanted in {s.code for s in visible} else None
    listed = await users.list_users(user, site)
    return render(
        request,
        "admin_people.html",
        people=listed.users,
        sites=visible,
        site=site,
        editing=administers(user),
    )


@page_for(*ADMINS)
async def person(request: Request, user: User) -> Response:
    """One person: their name, role and sites, whether they may log in, a new
    password, and logging them out everywhere (admins)."""
    found = await users.by_username(request.path_params["username"])
    if found is None:
        raise HTTPException(404, "No such user.")
    history = await audit.changes_to(found.username, "user.")
    return render(
        request,
        "admin_person.html",
        person=await users.admin_out(found),
        sites=await sites.visible_sites(user),
        me=found.id == user.id,
        history=history,
    )


@page_for(*MANAGERS)
async def site_list(request: Request, user: User) -> Response:
    """Every site with its staff and contacts counted (admins, who add one
    here), or a supervisor's own sites."""
    visible = await sites.visible_sites(user)
    contacts, staff = await sites.site_counts(visible)
    return render(
        request,
        "admin_sites.html",
        sites=visible,
        contacts=contacts,
        staff=staff,
        editing=administers(user),
    )


async def _site(request: Request, user: User) -> Site:
    site = await sites.member_site(user, request.path_params["code"])
    if site is None:
        raise HTTPException(404, "No such site.")
    return site


@page_for(*MANAGERS)
async def site_page(request: Request, user: User) -> Response:
    """One site: its emergency contacts and alert channels (admins add, change
    and delete them; supervisors read them) and its people."""
    site = await _site(request, user)
    return render(
        request,
        "admin_site.html",
        site=site,
        contacts=await sites.contacts_of(site),
        channels=[ChannelOut.of(c, site) for c in await channels_of(site)],
        staff=await sites.staff_of(site),
        library=request.app.state.playbooks,
        editing=administers(user),
    )


async def _of_site(model: type[sites.M], site: Site, raw: str, missing: str) -> sites.M | None:
    """A form's row of ``site`` by the id in its address; None for ``new``;
    a 404 saying ``missing`` for anything else."""
    if raw == "new":
        return None
    found = await sites.row_of_site(model, site, raw)
    if found is None:
        raise HTTPException(404, missing)
    return found


@page_for(*ADMINS)
async def contact_page(request: Request, user: User) -> Response:
    """The form for one emergency contact of a site: ``new``, or one by its id."""
    site = await _site(request, user)
    raw = request.path_params["contact_id"]
    contact = await _of_site(SiteContact, site, raw, N_("No such contact."))
    return render(
        request,
        "admin_contact.html",
        site=site,
        contact=contact,
        kinds=list(ContactKind),
        library=request.app.state.playbooks,
    )


@page_for(*ADMINS)
async def channel_page(request: Request, user: User) -> Response:
    """The form for one alert channel of a site: ``new``, or one by its id
    (with its last send or refusal, and the test button)."""
    site = await _site(request, user)
    raw = request.path_params["channel_id"]
    found = await _of_site(AlertChannel, site, raw, N_("No such channel."))
    channel = ChannelOut.of(found, site) if found else None
    return render(
        request,
        "admin_channel.html",
        site=site,
        channel=channel,
        kinds=list(ChannelKind),
        severities=list(Severity),
        events=list(ChannelEvent),
    )


@page_for(*ADMINS)
async def admin_log(request: Request, user: User) -> Response:
    """What admins changed, newest first; ``?before=`` an entry id for earlier ones."""
    raw = request.query_params.get("before", "")
    if raw and not raw.isdigit():
        raise ApiError(
            400, "bad_request", Msg("before must be an entry number, not {raw!r}.", raw=raw)
        )
    before = int(raw) if raw else None
    entries = await audit.recent(LOG_PAGE, before)
    return render(
        request,
        "admin_log.html",
        entries=entries,
        before=before,
        earlier=entries[-1].id if len(entries) == LOG_PAGE else None,
        library=request.app.state.playbooks,
    )


routes: list[BaseRoute] = [
    Route("/admin", people, methods=["GET"], include_in_schema=False),
    Route("/admin/users/{username}", person, methods=["GET"], include_in_schema=False),
    Route("/admin/sites", site_list, methods=["GET"], include_in_schema=False),
    Route("/admin/sites/{code}", site_page, methods=["GET"], include_in_schema=False),
    Route(
        "/admin/sites/{code}/contacts/{contact_id}",
        contact_page,
        methods=["GET"],
        include_in_schema=False,
    ),
    Route(
        "/admin/sites/{code}/channels/{channel_id}",
        channel_page,
        methods=["GET"],
        include_in_schema=False,
    ),
    Route("/admin/log", admin_log, methods=["GET"], include_in_schema=False),
]
