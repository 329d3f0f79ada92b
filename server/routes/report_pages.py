"""The pages of a report's life: each role's home (tiles, inbox, jobs), the report
flow, my reports, and one report with what each role can do to it."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date
from typing import Literal, cast
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.access import report_for, reports_visible_to, supervises
from server.models import (
    ActionStatus,
    CorrectiveAction,
    Report,
    ReportStatus,
    Role,
    Severity,
    Site,
    User,
)
from server.photos import check as photo_check
from server.report_shapes import load_record, load_review
from server.review import unfinished
from server.routes.action_pages import open_actions
from server.routes.contact_pages import calls_for
from server.templating import render


def _login_redirect(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


async def recent_types(user: User, limit: int = 4) -> list[str]:
    """The incident types this user reported most recently, newest first."""
    seen: list[str] = []
    # values_list(flat=True) gives bare values; tortoise types them as tuples.
    rows = cast(
        "list[str]",
        await Report.filter(reporter_id=user.id)
        .order_by("-received_at")
        .limit(50)
        .values_list("incident_type", flat=True),
    )
    for incident_type in rows:
        if incident_type not in seen:
            seen.append(incident_type)
        if len(seen) == limit:
            break
    return seen


async def home(request: Request) -> Response:
    """Each role's own start: the guard reports, the supervisor works the
    inbox, the technician their jobs."""
    user = request.state.user
    if user is None:
        return RedirectResponse("/login", status_code=303)
    request.state.open_actions = await open_actions(user)
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


async def tiles(request: Request, user: User) -> Response:
    library = request.app.state.playbooks
    recent = [library.incident(i) for i in await recent_types(user)]
    sites = await user.sites.all().order_by("code")
    return render(
        request,
        "home.html",
        library=library,
        sites=sites,
        recent=[i for i in recent if i is not None],
    )


class InboxQuery(BaseModel):
    """The inbox's filters; anything unknown falls back to showing more, never to an error."""

    status: Literal["open", "all", "new", "acknowledged", "assigned", "repaired", "closed"] = "open"
    severity: Severity | None = None
    type: str | None = None
    site: str | None = None


def _filters(request: Request) -> InboxQuery:
    raw = {k: v for k, v in request.query_params.items() if v}
    try:
        return InboxQuery.model_validate(raw)
    except ValidationError:
        return InboxQuery()


async def inbox(request: Request, user: User) -> Response:
    """The site's incidents, unacknowledged on top, then newest first."""
    query = _filters(request)
    sites = await (Site.all() if user.role == Role.ADMIN else user.sites.all()).order_by("code")
    reports = await reports_visible_to(user)
    if query.status == "open":
        reports = reports.exclude(status=ReportStatus.CLOSED)
    elif query.status != "all":
        reports = reports.filter(status=query.status)
    if query.severity:
        reports = reports.filter(severity=query.severity)
    if query.type:
        reports = reports.filter(incident_type=query.type)
    if query.site:
        reports = reports.filter(site__code=query.site)
    related = ("site", "reporter", "assignee")
    waiting = await (
        reports.filter(status=ReportStatus.NEW)
        .order_by("-received_at")
        .limit(100)
        .prefetch_related(*related)
    )
    rest = await (
        reports.exclude(status=ReportStatus.NEW)
        .order_by("-received_at", "-id")
        .limit(100)
        .prefetch_related(*related)
    )
    listed = [*waiting, *rest]
    return render(
        request,
        "inbox.html",
        reports=listed,
        overdue=await overdue_actions([r.id for r in listed], request.app.state.context.today()),
        unacknowledged=len(waiting),
        query=query,
        sites=sites,
        library=request.app.state.playbooks,
        now=request.app.state.context.clock(),
    )


async def overdue_actions(report_ids: list[uuid.UUID], today: date) -> Counter[uuid.UUID]:
    """How many overdue actions each of these reports has (for lists)."""
    rows = cast(
        "list[uuid.UUID]",
        await CorrectiveAction.filter(
            report_id__in=report_ids, status=ActionStatus.OPEN, due_date__lt=today
        ).values_list("report_id", flat=True),
    )
    return Counter(rows)


async def jobs(request: Request, user: User) -> Response:
    """The technician's jobs: to repair first, then repaired, then recently closed."""
    related = ("site", "reporter", "assignee")
    mine = Report.filter(assignee_id=user.id)
    open_jobs = await (
        mine.filter(status=ReportStatus.ASSIGNED)
        .order_by("-received_at")
        .prefetch_related(*related)
    )
    done = await (
        mine.filter(status__in=[ReportStatus.REPAIRED, ReportStatus.CLOSED])
        .order_by("-received_at")
        .limit(30)
        .prefetch_related(*related)
    )
    return render(
        request, "jobs.html", open_jobs=open_jobs, done=done, library=request.app.state.playbooks
    )


async def report_flow(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    incident = request.app.state.playbooks.incident(request.path_params["incident_id"])
    if incident is None:
        raise HTTPException(404, "No such incident type.")
    sites = await user.sites.all().order_by("code")
    return render(
        request,
        "report.html",
        incident=incident,
        sites=sites,
        # The sites' own numbers for this incident, beside 110/120/119.
        calls=await calls_for(sites, incident.id),
        playbook_version=request.app.state.playbooks.version,
    )


async def my_reports(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    reports = (
        await (await reports_visible_to(user))
        .order_by("-received_at", "-id")
        .limit(100)
        .prefetch_related("site", "reporter")
    )
    return render(request, "reports.html", reports=reports, library=request.app.state.playbooks)


async def report_detail(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    try:
        report_id = uuid.UUID(request.path_params["report_id"])
    except ValueError:
        raise HTTPException(404, "No such report.") from None
    report = await report_for(user, report_id)
    ctx = request.app.state.context
    events, photos = await load_record(report)
    answers, actions = await load_review(report)
    incident = request.app.state.playbooks.incident(report.incident_type)
    ticks = {s.step_index: s for s in report.steps if s.ticked}  # unticked: not done
    supervising = supervises(user)
    staff = (
        await User.filter(is_active=True, sites__id=report.site_id).order_by(
            "display_name", "username"
        )
        if supervising
        else []
    )
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
        answers={a.item_index: a for a in answers},
        actions=actions,
        today=ctx.today(),
        # What still keeps it from closing (analysis indexes, action ids).
        missing=blocked.detail["missing"] if blocked else None,
        # The guard who made it keeps ticking steps until the report is closed.
        live=report.reporter_id == user.id and report.status != ReportStatus.CLOSED,
        # The technician it is assigned to: before/after photos and "repaired".
        job=report.assignee_id == user.id
        and report.status in (ReportStatus.ASSIGNED, ReportStatus.REPAIRED),
        events=events,
        photos=photos,
        # Each photo's time and place against the report's, for its warnings.
        checks={p.id: photo_check(p, report) for p in photos},
    )


routes = [
    Route("/", home, methods=["GET"], include_in_schema=False),
    Route("/new", new_report, methods=["GET"], include_in_schema=False),
    Route("/report/{incident_id}", report_flow, methods=["GET"], include_in_schema=False),
    Route("/reports", my_reports, methods=["GET"], include_in_schema=False),
    Route("/reports/{report_id}", report_detail, methods=["GET"], include_in_schema=False),
]
