"""``GET /healthz``: for load balancers; public, no session, never cached."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server import health


async def healthz(request: Request) -> Response:
    """200 when the database answers and every worker runs, else 503 naming the part."""
    state = request.app.state
    workers = {
        "push": state.deliverer,
        "stream": state.hub,
        "escalation": state.escalator,
        "reminders": state.reminders,
    }
    healthy, body = await health.check(workers, state.health_timeout)
    return JSONResponse(
        body, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"}
    )


# Outside /api: not part of the API's contract, nor of its access matrix
# (tests/test_access.py says why), and AuthMiddleware looks up no session here.
routes = [Route("/healthz", healthz, methods=["GET"], include_in_schema=False)]
