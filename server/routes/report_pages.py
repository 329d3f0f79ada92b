"""The pages of a report's life: each role's home (tiles, inbox, jobs), the report
flow, my reports, and one report with what each role can do to it."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import action_list, phone_book, report_list, report_record, sites
from server.access import may_tick, supervises
from server.models import ReportStatus, Role, Site, User
from server.photos import check as photo_check
from server.report_list import InboxQuery
from server.review import unfinished
from server.templating import render


def _login_redirect(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


async def home(request: Request) -> Response:
    """Each role's own start: the guard reports, the supervisor works the
    inbox, the technician their jobs."""
    user = request.state.user
    if user is None:
        return RedirectResponse("/login", status_code=303)
    request.state.open_actions = await action_list.open_actions(user)
    if supervises(user):
        return await inbox(request, user)
    if user.role == Role.TECHNICIAN:
        return await jobs(request, user)
    return await tiles(request, user)


async def new_report(request: Request) -> Response:
    """The incident tiles, for anyone who reports (the guard's home)."""
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    return await tiles(request, user)


def _site_id(mine: list[Site]) -> int | None:
    """The site whose playbooks a guard follows: their first (most guards
    have one; a guard of several follows the first one's on the page)."""
    return mine[0].id if mine else None


async def tiles(request: Request, user: User) -> Response:
    book = request.app.state.playbooks
    await book.fresh()
    mine = await sites.member_sites(user)
    site_id = _site_id(mine)
    recent = [book.incident(i, site_id) for i in await report_list.recent_types(user)]
    return render(
        request,
        "home.html",
        library=book.for_site(site_id),
        sites=mine,
        recent=[i for i in recent if i is not None],
    )


def _filters(request: Request) -> InboxQuery:
    raw = {k: v for k, v in request.query_params.items() if v}
    try:
        return InboxQuery.model_validate(raw)
    except ValidationError:
        return InboxQuery()


async def inbox(request: Request, user: User) -> Response:
    """The site's incidents, unacknowledged on top, then newest first."""
    query = _filters(request)
    ctx = request.app.state.context
    visible = await sites.visible_sites(user)
    found = await report_list.inbox(user, query, ctx.today())
    return render(
        request,
        "inbox.html",
        reports=[*found.waiting, *found.rest],
        overdue=found.overdue,
        unacknowledged=len(found.waiting),
        query=query,
        sites=visible,
        library=request.app.state.playbooks,
        now=ctx.clock(),
    )


async def jobs(request: Request, user: User) -> Response:
    """The technician's jobs: to repair first, then repaired, then recently closed."""
    found = await report_list.jobs(user)
    return render(
        request,
        "jobs.html",
        open_jobs=found.open,
        done=found.done,
        library=request.app.state.playbooks,
    )


async def report_flow(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    book = request.app.state.playbooks
    await book.fresh()
    mine = await sites.member_sites(user)
    incident = book.incident(request.path_params["incident_id"], _site_id(mine))
    if incident is None:
        raise HTTPException(404, "No such incident type.")
    return render(
        request,
        "report.html",
        incident=incident,
        sites=mine,
        # The sites' own numbers for this incident, beside 110/120/119.
        calls=await phone_book.calls_for(mine, incident.id),
        # The version the page shows: a report begun on it is sent with it,
        # however long it waits on the phone.
        playbook_version=incident.version,
    )


async def my_reports(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    reports = await report_list.my_reports(user)
    return render(request, "reports.html", reports=reports, library=request.app.state.playbooks)


async def report_detail(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    try:
        report_id = uuid.UUID(request.path_params["report_id"])
    except ValueError:
        raise HTTPException(404, "No such report.") from None
    found = await report_record.record(user, report_id)
    report = found.report
    ctx = request.app.state.context
    await ctx.library.fresh(report.playbook_version)
    incident = ctx.library.of_report(report)
    ticks = {s.step_index: s for s in report.steps if s.ticked}  # unticked: not done
    supervising = supervises(user)
    staff = await report_record.site_staff(report) if supervising else []
    blocked = await unfinished(ctx, report) if supervising else None
    return render(
        request,
        "report_detail.html",
        report=report,
        incident=incident,
        ticks=ticks,
        supervising=supervising,
        technicians=[u for u in staff if u.role == Role.TECHNICIAN],
        staff=staff,
        answers={a.item_index: a for a in found.answers},
        actions=found.actions,
        today=ctx.today(),
        # What still keeps it from closing (analysis indexes, action ids).
        missing=blocked.detail["missing"] if blocked else None,
        # The guard who made it keeps ticking steps until the report is closed.
        live=may_tick(user, report) and report.status != ReportStatus.CLOSED,
        # The technician it is assigned to: before/after photos and "repaired".
        job=report.assignee_id == user.id
        and report.status in (ReportStatus.ASSIGNED, ReportStatus.REPAIRED),
        events=found.events,
        photos=found.photos,
        # Each photo's time and place against the report's, for its warnings.
        checks={p.id: photo_check(p, report) for p in found.photos},
    )


routes = [
    Route("/", home, methods=["GET"], include_in_schema=False),
    Route("/new", new_report, methods=["GET"], include_in_schema=False),
    Route("/report/{incident_id}", report_flow, methods=["GET"], include_in_schema=False),
    Route("/reports", my_reports, methods=["GET"], include_in_schema=False),
    Route("/reports/{report_id}", report_detail, methods=["GET"], include_in_schema=False),
]
