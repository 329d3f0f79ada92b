"""The playbook library's pages: the library, one playbook's editor, its
versions and the diff between two. Admins edit the company's playbooks; a
supervisor edits the layer of each of their sites. Every write goes through
the API (``playbook-editor.js``); the pages read through the services."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server import playbook_editing as editing
from server import sites
from server.access import MANAGERS, administers, page_for
from server.errors import ApiError
from server.models import PlaybookDraft, Role, Site, User
from server.templating import render


async def _scope(request: Request, user: User) -> tuple[list[Site], Site | None]:
    """The sites the user may edit a layer of, and the one asked for (None:
    the company's, an admin's; a supervisor's first site otherwise)."""
    mine = list(await sites.visible_sites(user))
    wanted = request.query_params.get("site") or None
    site = next((s for s in mine if s.code == wanted), None)
    if site is None and not administers(user) and mine:
        site = mine[0]
    return mine, site


@page_for(*MANAGERS)
async def library(request: Request, user: User) -> Response:
    """Every playbook of the company (or of a site), its version, and drafts in hand."""
    mine, site = await _scope(request, user)
    book = request.app.state.playbooks
    await book.fresh()
    scope = site.id if site else 0
    drafts = set(await PlaybookDraft.filter(scope=scope).values_list("incident_type", flat=True))
    new_types = [
        i
        for i in await PlaybookDraft.filter(scope=0).values_list("incident_type", flat=True)
        if book.incident(i) is None
    ]
    return render(
        request,
        "playbook_library.html",
        library=book.for_site(site.id if site else None),
        book=book,
        scope=scope,
        site=site,
        sites=mine,
        drafts=drafts,
        new_types=new_types,
        company=administers(user),
    )


@page_for(*MANAGERS)
async def editor(request: Request, user: User) -> Response:
    """One playbook's layer: steps reworded, added, moved and hidden; the
    draft saved; published with a note."""
    _, site = await _scope(request, user)
    incident = request.path_params["incident"]
    ctx = request.app.state.context
    if site is None and not administers(user):
        raise ApiError(403, "forbidden", "Only admins may edit the company's playbooks.")
    try:
        draft = await editing.get_draft(ctx, user, incident, site.code if site else None)
    except ApiError as exc:
        if exc.status != 404 or site is not None or not administers(user):
            raise
        draft = None  # a new type: the editor starts with its title and category
    return render(
        request,
        "playbook_edit.html",
        incident_id=incident,
        draft=draft.model_dump(mode="json") if draft else None,
        site=site,
        categories=ctx.library.shipped.categories,
        current=ctx.library.incident(incident, site.id if site else None),
    )


@page_for(*MANAGERS)
async def history(request: Request, user: User) -> Response:
    """Every version of one playbook, newest first; the diff of one with the one before."""
    _, site = await _scope(request, user)
    incident = request.path_params["incident"]
    ctx = request.app.state.context
    found = await editing.list_versions(ctx, user, incident, site.code if site else None)
    shown = request.query_params.get("diff") or (
        found.versions[0].id if len(found.versions) > 1 else None
    )
    diff = None
    if shown:
        ids = [v.id for v in found.versions]
        if shown in ids and ids.index(shown) + 1 < len(ids):
            before = ids[ids.index(shown) + 1]
            diff = await editing.diff(ctx, user, incident, before, shown)
    return render(
        request,
        "playbook_versions.html",
        found=found,
        diff=diff,
        shown=shown,
        site=site,
        incident=ctx.library.incident(incident, site.id if site else None),
        editing=administers(user) or (site is not None and user.role == Role.SUPERVISOR),
    )


routes: list[BaseRoute] = [
    Route("/admin/playbooks", library, methods=["GET"], include_in_schema=False),
    Route("/admin/playbooks/{incident}", editor, methods=["GET"], include_in_schema=False),
    Route(
        "/admin/playbooks/{incident}/versions", history, methods=["GET"], include_in_schema=False
    ),
]
