"""The playbooks: the JSON for the app, and the guides to read on a phone."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.errors import ApiError
from server.i18n import LANGUAGES, normalise
from server.playbooks import Library
from server.templating import render


def library(request: Request) -> Library:
    return request.app.state.playbooks


async def api_playbooks(request: Request) -> Response:
    """Playbooks.
    ---
    summary: Every incident playbook, in one language (zh-CN by default).
    parameters:
      - {name: lang, in: query, required: false, schema: {type: string, enum: [zh-CN, en]}}
    responses:
      200: {description: "{version, lang, categories: [{id, title, incidents: [...]}]}"}
      422: {description: An unsupported language.}
    """
    asked = request.query_params.get("lang")
    lang = normalise(asked) if asked else request.state.lang
    if lang not in LANGUAGES:
        raise ApiError(422, "invalid", f"lang: use one of {', '.join(LANGUAGES)}.")
    lib = library(request)
    # Public knowledge, the same for everyone: the browser and the service
    # worker may keep it, and revalidate it cheaply by its version.
    etag = f'"{lib.version}-{lang}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Cookie"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return JSONResponse(lib.to_json(lang), headers=headers)


async def index_page(request: Request) -> Response:
    return render(request, "playbooks.html", library=library(request))


async def guide_page(request: Request) -> Response:
    incident = library(request).incident(request.path_params["incident_id"])
    if incident is None:
        raise HTTPException(404, "No such playbook.")
    return render(request, "playbook.html", incident=incident)


routes = [
    Route("/api/playbooks", api_playbooks, methods=["GET"]),
    Route("/playbooks", index_page, methods=["GET"], include_in_schema=False),
    Route("/playbooks/{incident_id}", guide_page, methods=["GET"], include_in_schema=False),
]
