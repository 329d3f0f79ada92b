"""The guard's pages: home with the incident tiles, the report flow, my reports, one report."""

from __future__ import annotations

import uuid
from typing import cast
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.errors import ApiError
from server.models import Report, ReportStatus, User
from server.report_shapes import load_record
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
    user = request.state.user
    if user is None:
        return RedirectResponse("/login", status_code=303)
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
        playbook_version=request.app.state.playbooks.version,
    )


async def my_reports(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return _login_redirect(request)
    reports = (
        await (await Report.visible_to(user))
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
    try:
        report = await Report.seen_by(user, report_id)
    except ApiError as exc:
        raise HTTPException(exc.status, exc.message) from None
    events, photos = await load_record(report)
    incident = request.app.state.playbooks.incident(report.incident_type)
    ticks = {s.step_index: s for s in report.steps}
    return render(
        request,
        "report_detail.html",
        report=report,
        incident=incident,
        ticks=ticks,
        # The guard who made it keeps ticking steps until the report is closed.
        live=report.reporter_id == user.id and report.status != ReportStatus.CLOSED,
        # The technician it is assigned to: before/after photos and "repaired".
        job=report.assignee_id == user.id
        and report.status in (ReportStatus.ASSIGNED, ReportStatus.REPAIRED),
        events=events,
        photos=photos,
    )


routes = [
    Route("/", home, methods=["GET"], include_in_schema=False),
    Route("/report/{incident_id}", report_flow, methods=["GET"], include_in_schema=False),
    Route("/reports", my_reports, methods=["GET"], include_in_schema=False),
    Route("/reports/{report_id}", report_detail, methods=["GET"], include_in_schema=False),
]
