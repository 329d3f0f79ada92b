"""我的整改 / My actions: the corrective actions a person owns, what is due first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import action_list
from server.templating import render


async def my_actions(request: Request) -> Response:
    user = request.state.user
    if user is None:
        return RedirectResponse("/login?next=/actions", status_code=303)
    today = request.app.state.context.today()
    mine = await action_list.my_actions(user, today)
    return render(
        request,
        "actions.html",
        to_do=mine.to_do,
        waiting=mine.waiting,
        passed=mine.passed,
        today=today,
        library=request.app.state.playbooks,
    )


routes = [Route("/actions", my_actions, methods=["GET"], include_in_schema=False)]
