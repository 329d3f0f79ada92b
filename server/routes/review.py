"""The review of a report: 分析 answers and 改善 actions (done, re-checked)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server import review
from server.api import Answer, ApiRoute, written
from server.models import Role, User
from server.report_shapes import ReportOut
from server.review import ActionIn, AnalysisIn, CheckIn, DoneIn


async def put_analysis(request: Request, user: User, body: AnalysisIn) -> Response:
    """Answer a 分析 item of the report's playbook: ok, gap (with a note) or na.

    ``index`` is the item's place (from 0) in the playbook's analysis list.
    Answering again with another verdict replaces the answer; every version
    stays in the timeline.
    """
    params = request.path_params
    result = await review.answer_analysis(
        request.app.state.context, user, params["report_id"], params["index"], body
    )
    return written(result)


async def put_action(request: Request, user: User, body: ActionIn) -> Response:
    """Create a corrective action (改善) under the id the client made, or change
    it while it is open; its owner, a member of the site, gets a push."""
    params = request.path_params
    result = await review.put_action(
        request.app.state.context, user, params["report_id"], params["action_id"], body
    )
    return written(result)


async def put_action_done(request: Request, user: User, body: DoneIn) -> Response:
    """The action's owner marks it done, with a note and photos of the report."""
    params = request.path_params
    result = await review.mark_done(
        request.app.state.context, user, params["report_id"], params["action_id"], body
    )
    return written(result)


async def put_action_check(request: Request, user: User, body: CheckIn) -> Response:
    """Re-check a done action (复查), never by its owner: passed, or back to open
    with a note (and the owner is told)."""
    params = request.path_params
    result = await review.check(
        request.app.state.context, user, params["report_id"], params["action_id"], body
    )
    return written(result)


def _answers(**extra: str) -> dict[int, Answer]:
    answers: dict[int, Answer] = {
        201: (ReportOut, "Recorded: the report."),
        200: (ReportOut, "Recorded already (a resend): the report, unchanged."),
        403: "Not the user's site, or not their part to play.",
        404: "No such report.",
        409: "The incident is closed.",
        422: "An id that is not a UUID.",
    }
    for status, text in extra.items():
        answers[int(status.lstrip("_"))] = text
    return answers


SUPERVISE = [Role.SUPERVISOR]  # and admins

routes = [
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/analysis/{index:int}",
        put_analysis,
        roles=SUPERVISE,
        body=AnalysisIn,
        responses=_answers(_422="No such 分析 item, or a gap without a note."),
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/actions/{action_id}",
        put_action,
        roles=SUPERVISE,
        body=ActionIn,
        responses=_answers(
            _409="The incident is closed, the action is done already, or its id is another report's.",
            _422="The owner is not a member of the site, or no such 改善 item.",
        ),
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/actions/{action_id}/done",
        put_action_done,
        body=DoneIn,
        responses=_answers(
            _403="Only the action's owner.",
            _404="No such report or action.",
            _409="Done already with another note, or the incident is closed.",
            _422="A photo that is not one of the report's.",
        ),
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/actions/{action_id}/check",
        put_action_check,
        roles=SUPERVISE,
        body=CheckIn,
        responses=_answers(
            _403="The owner may not re-check their own action.",
            _404="No such report or action.",
            _409="The action is not done, or the incident is closed.",
            _422="A failed re-check without a note.",
        ),
    ),
]
