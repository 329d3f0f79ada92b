"""我的 / Me: the user's sites, how they are alerted, and their other logins."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import alert_channels, sites
from server.auth import Sessions
from server.templating import render


async def me_page(request: Request) -> Response:
    """The user's sites, and how they are alerted: this device's Web Push and,
    for supervisors and admins, the group robots their sites' alerts go to;
    and how many other devices are logged in, to log them out."""
    user = request.state.user
    if user is None:
        return RedirectResponse("/login?next=/me", status_code=303)
    sessions: Sessions = request.app.state.sessions
    return render(
        request,
        "me.html",
        sites=await sites.member_sites(user),
        robots=await alert_channels.alerting(user),
        other_sessions=await sessions.count_others(request.state.session),
    )


routes = [Route("/me", me_page, methods=["GET"], include_in_schema=False)]
