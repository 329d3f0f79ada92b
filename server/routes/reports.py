"""The report API: create by the phone's id, tick steps, list, read."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import reports as service
from server.auth import current_user, requires
from server.errors import parse_body, validation_error
from server.push import notify_new_report


@requires()
async def put_report(request: Request) -> Response:
    """Create a report.
    ---
    summary: Create a report under the id the phone made; a resend is safe.
    parameters:
      - {name: report_id, in: path, required: true, schema: {type: string, format: uuid}}
    requestBody:
      content:
        application/json:
          schema:
            type: object
            required: [site, incident_type, occurred_at]
            properties:
              site: {type: string, description: site code}
              incident_type: {type: string, description: playbook incident id}
              severity: {type: string, enum: [low, medium, high, critical]}
              occurred_at: {type: string, format: date-time}
              client_sent_at: {type: string, format: date-time}
              playbook_version: {type: string}
              location:
                type: object
                properties:
                  text: {type: string, maxLength: 500}
                  lat: {type: number}
                  lng: {type: number}
                  accuracy_m: {type: number}
              notes: {type: string, maxLength: 10000}
              steps:
                type: array
                items:
                  type: object
                  properties: {index: {type: integer}, checked_at: {type: string, format: date-time}}
    responses:
      201: {description: Created; the report.}
      200: {description: "The same report again: nothing changed."}
      401: {description: Not logged in.}
      403: {description: "A site the user does not belong to, or someone else's report."}
      409: {description: "A different report, or a step at another time, under this id."}
      422: {description: "Invalid: unknown incident type or site, missing fields, times in the future, notes too long."}
    """
    user = current_user(request)
    report_id = service.parse_report_id(request.path_params["report_id"])
    body = await parse_body(request, service.ReportIn)
    library = request.app.state.playbooks
    report, created = await service.put_report(user, report_id, body, library)
    if created is not None:
        # Queued in the database (durable), sent by the worker: the guard's
        # request never waits on a push service.
        title = library.incident(report.incident_type).title
        if await notify_new_report(report, {"zh-CN": title.zh, "en": title.en}):
            request.app.state.deliverer.kick()
    if created is None:
        return JSONResponse(await service.load_full(report))
    return JSONResponse(created, status_code=201, headers={"Location": f"/api/reports/{report.id}"})


@requires()
async def put_step(request: Request) -> Response:
    """Tick a step.
    ---
    summary: Record that a handling step was done, at the phone's time; a resend is safe.
    parameters:
      - {name: report_id, in: path, required: true, schema: {type: string, format: uuid}}
      - {name: index, in: path, required: true, schema: {type: integer}}
    requestBody:
      content:
        application/json:
          schema: {type: object, required: [checked_at],
                   properties: {checked_at: {type: string, format: date-time}}}
    responses:
      201: {description: Recorded.}
      200: {description: "Recorded already, at the same time."}
      403: {description: Not the user's report.}
      404: {description: No such report.}
      409: {description: Already recorded at another time.}
      422: {description: "No such step, or a time in the future."}
    """
    user = current_user(request)
    report = await service.get_visible(
        user, service.parse_report_id(request.path_params["report_id"])
    )
    index: int = request.path_params["index"]
    body = await parse_body(request, service.StepTickIn)
    created = await service.tick_step(user, report, index, body, request.app.state.playbooks)
    return JSONResponse(await service.load_full(report), status_code=201 if created else 200)


@requires()
async def get_report(request: Request) -> Response:
    """One report.
    ---
    summary: A report with its steps in order, their times, and its timeline.
    parameters:
      - {name: report_id, in: path, required: true, schema: {type: string, format: uuid}}
    responses:
      200: {description: The report.}
      403: {description: Not the user's to see.}
      404: {description: No such report.}
    """
    user = current_user(request)
    report = await service.get_visible(
        user, service.parse_report_id(request.path_params["report_id"])
    )
    return JSONResponse(await service.load_full(report))


@requires()
async def list_reports(request: Request) -> Response:
    """Reports.
    ---
    summary: "Reports the user may see (a guard their own, a supervisor their sites'), newest first."
    parameters:
      - {name: status, in: query, schema: {type: string, enum: [new, acknowledged, assigned, repaired, closed]}}
      - {name: type, in: query, schema: {type: string}}
      - {name: site, in: query, schema: {type: string}}
      - {name: since, in: query, schema: {type: string, format: date-time}}
      - {name: cursor, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
    responses:
      200: {description: "{reports: [...], next_cursor}"}
      400: {description: A cursor this server did not give out.}
      403: {description: A site the user does not belong to.}
      422: {description: A malformed filter.}
    """
    user = current_user(request)
    try:
        query = service.ListQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise validation_error(exc) from None
    return JSONResponse(await service.list_reports(user, query))


routes = [
    Route("/api/reports", list_reports, methods=["GET"]),
    Route("/api/reports/{report_id}", get_report, methods=["GET"]),
    Route("/api/reports/{report_id}", put_report, methods=["PUT"]),
    Route("/api/reports/{report_id}/steps/{index:int}", put_step, methods=["PUT"]),
]
