"""The report API: create by the phone's id, tick and untick steps, list, read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server import report_intake, report_list, report_steps
from server.api import ApiRoute, reply, written
from server.models import User
from server.report_intake import ReportIn
from server.report_list import ListQuery
from server.report_shapes import ReportOut, ReportPage
from server.report_steps import StepTickIn, StepUntickQuery


async def put_report(request: Request, user: User, body: ReportIn) -> Response:
    """Create a report under the id the phone made; a resend is safe.

    The same id with the same content is answered 200 and changes nothing;
    transport fields (client_sent_at, playbook_version) never make a conflict.
    """
    result = await report_intake.put_report(
        request.app.state.context, user, request.path_params["report_id"], body
    )
    return written(result, location=f"/api/reports/{result.body.id}")


async def put_step(request: Request, user: User, body: StepTickIn) -> Response:
    """Record that a handling step was done, at the phone's time; a resend is safe."""
    result = await report_steps.tick_step(
        request.app.state.context,
        user,
        request.path_params["report_id"],
        request.path_params["index"],
        body,
    )
    return written(result)


async def delete_step(request: Request, user: User, query: StepUntickQuery) -> Response:
    """Untick a step ticked by mistake, at the phone's time (``at``); the tick is
    kept as evidence and the untick shown in the timeline. A resend is safe."""
    result = await report_steps.untick_step(
        request.app.state.context,
        user,
        request.path_params["report_id"],
        request.path_params["index"],
        query,
    )
    return reply(result)


async def get_report(request: Request, user: User) -> Response:
    """A report with its steps in order, their times, its timeline and photos."""
    report_id = request.path_params["report_id"]
    return reply(await report_list.get_report(request.app.state.context, user, report_id))


async def list_reports(request: Request, user: User, query: ListQuery) -> Response:
    """Reports the user may see (a guard their own, a supervisor their sites'), newest first."""
    return reply(await report_list.list_reports(user, query))


routes = [
    ApiRoute(
        "GET",
        "/api/reports",
        list_reports,
        query=ListQuery,
        responses={
            200: ReportPage,
            400: "A cursor this server did not give out.",
            403: "A site the user does not belong to.",
            422: "An unknown site.",
        },
    ),
    ApiRoute(
        "GET",
        "/api/reports/{report_id}",
        get_report,
        responses={
            200: ReportOut,
            403: "Not the user's to see.",
            404: "No such report.",
            422: "The id is not a UUID.",
        },
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}",
        put_report,
        body=ReportIn,
        responses={
            201: (ReportOut, "Created: the report."),
            200: (ReportOut, "The same report again: nothing changed."),
            403: "A site the user does not belong to, or someone else's report.",
            409: "A different report, or a step at another time, under this id.",
            422: "Unknown incident type or site, a time in the future, an id that is not a UUID.",
        },
    ),
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/steps/{index:int}",
        put_step,
        body=StepTickIn,
        responses={
            201: (ReportOut, "Recorded: the report."),
            200: (ReportOut, "Recorded already, at the same time: the report."),
            403: "Not the user's report.",
            404: "No such report.",
            409: "Already recorded at another time.",
            422: "No such step, or a time in the future.",
        },
    ),
    ApiRoute(
        "DELETE",
        "/api/reports/{report_id}/steps/{index:int}",
        delete_step,
        query=StepUntickQuery,
        responses={
            200: (ReportOut, "Unticked, or not ticked at that time already: the report."),
            403: "Not the user's report.",
            404: "No such report.",
            409: "The incident is closed.",
            422: "No such step, or a time missing or in the future.",
        },
    ),
]
