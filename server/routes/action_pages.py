"""我的整改 / My actions: the corrective actions a person owns, what is due first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server.models import ActionStatus, CorrectiveAction, User
from server.templating import render


async def open_actions(user: User) -> int:
    """How many actions ``user`` still has to do (for the home pages' reminder)."""
    return await CorrectiveAction.filter(owner_id=user.id, status=ActionStatus.OPEN).count()


async def my_actions(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return RedirectResponse("/login?next=/actions", status_code=303)
    today = request.app.state.context.today()
    mine = CorrectiveAction.filter(owner_id=user.id)
    related = ("report", "report__site", "created_by", "rechecked_by")
    to_do = await mine.filter(status=ActionStatus.OPEN).prefetch_related(*related)
    # Overdue first, then by due day; those without a day last.
    to_do.sort(key=lambda a: (not a.is_overdue(today), a.due_date is None, a.due_date or today))
    waiting = await (
        mine.filter(status=ActionStatus.DONE).order_by("-done_at").prefetch_related(*related)
    )
    passed = await (
        mine.filter(status=ActionStatus.VERIFIED)
        .order_by("-rechecked_at")
        .limit(20)
        .prefetch_related(*related)
    )
    return render(
        request,
        "actions.html",
        to_do=to_do,
        waiting=waiting,
        passed=passed,
        today=today,
        library=request.app.state.playbooks,
    )


routes = [Route("/actions", my_actions, methods=["GET"], include_in_schema=False)]
