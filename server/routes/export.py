"""The CSV export of the report list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from server import export
from server.api import ApiRoute, Raw
from server.export import ExportQuery
from server.models import User


async def export_reports(request: Request, user: User, query: ExportQuery) -> Response:
    """Every report of the list's filters as CSV for Excel (UTF-8 with a BOM), one row per incident.

    Columns: site, incident type, severity, status, reporter; times of occurrence, receipt,
    acknowledgement and closure in the sites' time zone; whole minutes from receipt to
    acknowledgement and to closure (empty until then); corrective actions not yet verified,
    and those overdue. Headers and labels in Chinese, or English with `lang=en`.
    """
    ctx = request.app.state.context
    chunks = await export.export_reports(ctx, user, query, request.state.lang)
    name = export.filename(ctx.today())
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            # Reports are private: never kept by a shared cache.
            "Cache-Control": "private, no-store",
        },
    )


routes: list[BaseRoute] = [
    ApiRoute(
        "GET",
        "/api/reports.csv",
        export_reports,
        query=ExportQuery,
        responses={
            200: Raw("text/csv", "The reports as CSV, UTF-8 with a byte order mark."),
            403: "A site the user does not belong to.",
            422: "An unknown site.",
        },
    ),
]
