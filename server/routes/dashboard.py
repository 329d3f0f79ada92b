"""The dashboard page, ``GET /dashboard``: supervisors and admins only."""

from __future__ import annotations

from urllib.parse import quote

from babel.dates import format_date, format_skeleton
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from server import charts, dashboard
from server.access import require_dashboard
from server.errors import ApiError, Msg
from server.templating import render

# The ranges offered as one tap each; any 1 to MAX_MONTHS may be asked for.
RANGES = (3, 6, 12, 24, 36)


def _months(request: Request) -> int:
    raw = request.query_params.get("months", "")
    if not raw:
        return dashboard.DEFAULT_MONTHS
    if not raw.isdigit() or not 1 <= int(raw) <= dashboard.MAX_MONTHS:
        raise ApiError(
            400,
            "bad_request",
            Msg(
                "months must be a whole number from 1 to {most}, not {raw!r}.",
                most=dashboard.MAX_MONTHS,
                raw=raw,
            ),
        )
    return int(raw)


async def dashboard_page(request: Request) -> Response:
    """Incidents per month by type and by site, the median minutes to
    acknowledge and to close, and the 改善 actions open and overdue."""
    user = request.state.user
    if user is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    require_dashboard(user)
    months = _months(request)
    ctx = request.app.state.context
    data = await dashboard.build(ctx, user, months)
    locale = "en" if request.state.lang == "en" else "zh_CN"
    ticks = [
        charts.Tick(
            label=format_date(day, "LLL", locale=locale),
            full=format_skeleton("yMMM", day, locale=locale),
            group=format_skeleton("y", day, locale=locale),
        )
        for day in data.months
    ]

    def title(incident_type: str) -> str:
        incident = ctx.library.incident(incident_type)
        return incident.title.get(request.state.lang) if incident else incident_type

    return render(
        request,
        "dashboard.html",
        data=data,
        months=months,
        ranges=RANGES,
        ticks=ticks,
        type_rows=[(title(key), counts) for key, counts in data.by_type.rows.items()],
        site_rows=list(data.by_site.rows.items()),
        today=ctx.today(),
        library=ctx.library,
        charts=charts,
    )


routes: list[BaseRoute] = [
    Route("/dashboard", dashboard_page, methods=["GET"], include_in_schema=False),
]
