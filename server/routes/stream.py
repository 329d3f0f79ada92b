"""The live stream (Server-Sent Events) that keeps an inbox up to date."""

from __future__ import annotations

import anyio
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from server import stream
from server.api import ApiRoute, Raw
from server.models import User
from server.stream import StreamQuery

# A client that stops reading for this long is dropped (its reconnect resumes).
SEND_TIMEOUT = 30.0
# Seconds a stream has to end by itself once the server is stopping.
SHUTDOWN_GRACE = 2.0


async def get_stream(request: Request, user: User, query: StreamQuery) -> Response:
    """Server-Sent Events of reports created or changed, for the reports the user may see.

    Each message is `event: report` with `id:` the event's id and `data:` a JSON ReportChange: `{"event": {id, kind, at, actor, data}, "report": ReportSummary}` (the report after the change), within a second of the change. A reconnect with Last-Event-ID (or `?last_event_id=`) first replays every event after that id; without it the stream starts now. Comment lines every 15 s keep proxies from closing it.
    """
    after = stream.resume_after(request.headers.get("last-event-id"), query)
    # Set when the server is told to stop: the stream then ends its response
    # properly, instead of being cut off mid-response.
    stopping = anyio.Event()
    return EventSourceResponse(
        stream.follow(request.app.state.hub, user, after, stop=stopping),
        send_timeout=SEND_TIMEOUT,
        shutdown_event=stopping,
        shutdown_grace_period=SHUTDOWN_GRACE,
    )


routes = [
    ApiRoute(
        "GET",
        "/api/stream",
        get_stream,
        query=StreamQuery,
        responses={
            200: Raw("text/event-stream", "The stream: one `report` message per event."),
            422: "A Last-Event-ID that is not an event id.",
        },
    ),
]
