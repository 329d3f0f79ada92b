"""The follow-up of a report: acknowledge, assign, reply, repair, close, reopen."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from server import followup
from server.api import Answer, ApiRoute, written
from server.context import Context
from server.followup import Acknowledgement, Assignment, Closure, Reopening, Repair, Reply
from server.models import Role, User
from server.report_shapes import ReportOut
from server.schemas import Written

Action = Callable[[Context, User, str, Any], Awaitable[Written[ReportOut]]]


async def _act(request: Request, user: User, body: Any, action: Action) -> Response:
    report_id = request.path_params["report_id"]
    return written(await action(request.app.state.context, user, report_id, body))


async def put_acknowledgement(request: Request, user: User, body: Acknowledgement) -> Response:
    """Acknowledge a new report: a supervisor has seen it and is on it (new -> acknowledged)."""
    return await _act(request, user, body, followup.acknowledge)


async def put_assignment(request: Request, user: User, body: Assignment) -> Response:
    """Assign the repair to a technician of the report's site, who gets a push (-> assigned).

    Reassigning to someone else is allowed, also after a repair (someone else
    redoes it); assigning the same technician again changes nothing.
    """
    return await _act(request, user, body, followup.assign)


async def put_reply(request: Request, user: User, body: Reply) -> Response:
    """Publish the approved reply wording (统一回复口径); the reporter gets a push.

    Publishing again replaces it; the timeline keeps every version.
    """
    return await _act(request, user, body, followup.publish_reply)


async def put_repair(request: Request, user: User, body: Repair) -> Response:
    """Mark the job repaired (assigned -> repaired): only its technician, with an after photo.

    The site's supervisors get a push.
    """
    return await _act(request, user, body, followup.mark_repaired)


async def put_closure(request: Request, user: User, body: Closure) -> Response:
    """Close the incident (acknowledged or repaired -> closed).

    Afterwards new steps and photos are refused with 409.
    """
    return await _act(request, user, body, followup.close)


async def delete_closure(request: Request, user: User, body: Reopening) -> Response:
    """Reopen a closed incident, to the status it was closed from; the reason is recorded."""
    return await _act(request, user, body, followup.reopen)


def _answers(**extra: str) -> dict[int, Answer]:
    answers: dict[int, Answer] = {
        201: (ReportOut, "Done: the report."),
        200: (ReportOut, "Done already (a resend): the report, unchanged."),
        403: "Not the user's site, or not their part to play.",
        404: "No such report.",
        409: "The status does not allow it (the message names the current one).",
        422: "The report id is not a UUID.",
    }
    for status, text in extra.items():
        answers[int(status.lstrip("_"))] = text
    return answers


SUPERVISE = [Role.SUPERVISOR]  # and admins, who may do everything

routes = [
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/acknowledgement",
        put_acknowledgement,
        roles=SUPERVISE,
        body=Acknowledgement,
        responses=_answers(),
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/assignment",
        put_assignment,
        roles=SUPERVISE,
        body=Assignment,
        responses=_answers(_422="The assignee is not a technician of the report's site."),
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/reply",
        put_reply,
        roles=SUPERVISE,
        body=Reply,
        responses=_answers(_409="The incident is closed."),
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/repair",
        put_repair,
        body=Repair,
        responses=_answers(
            _403="Only the technician the job is assigned to.",
            _409="Not assigned now, or no repair_after photo yet (the message says which).",
        ),
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/closure",
        put_closure,
        roles=SUPERVISE,
        body=Closure,
        responses=_answers(),
    ),
    ApiRoute(
        "DELETE",
        "/api/reports/{report_id}/closure",
        delete_closure,
        roles=SUPERVISE,
        body=Reopening,
        responses=_answers(_409="The incident is not closed."),
    ),
]
