"""The printable incident report, ``GET /reports/{id}/print``: the whole record
on A4 pages (header, 处理 with its times, photos, 分析, 改善 with the re-checks,
the timeline), for the browser's "save as PDF" or a printer."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from server import report_record
from server.models import PhotoKind
from server.photos import check as photo_check
from server.templating import render


async def print_page(request: Request) -> Response:
    """The report as one document, for whoever may see the report."""
    user = request.state.user
    if user is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    try:
        report_id = uuid.UUID(request.path_params["report_id"])
    except ValueError:
        raise HTTPException(404, "No such report.") from None
    found = await report_record.printable(user, report_id)
    report, photos = found.report, found.photos
    ctx = request.app.state.context
    await ctx.library.fresh(report.playbook_version)
    return render(
        request,
        "print.html",
        report=report,
        incident=ctx.library.of_report(report),
        ticks={s.step_index: s for s in report.steps if s.ticked},
        photo_groups=[
            (kind, [p for p in photos if p.kind == kind])
            for kind in (PhotoKind.EVIDENCE, PhotoKind.REPAIR_BEFORE, PhotoKind.REPAIR_AFTER)
        ],
        photo_count=len(photos),
        checks={p.id: photo_check(p, report) for p in photos},
        answers={a.item_index: a for a in found.answers},
        actions=found.actions,
        events=found.events,
        today=ctx.today(),
        printed_at=ctx.clock(),
        timezone=ctx.settings.timezone,
    )


routes: list[BaseRoute] = [
    Route("/reports/{report_id}/print", print_page, methods=["GET"], include_in_schema=False),
]
