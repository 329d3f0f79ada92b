"""The playbooks: the JSON for the app, and the guides to read on a phone."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.api import ApiRoute, reply
from server.i18n import LANGUAGES, normalise
from server.playbooks import Library, LibraryOut
from server.templating import render


def library(request: Request) -> Library:
    # app.state is untyped; the app's startup puts the loaded Library there.
    playbooks: Library = request.app.state.playbooks
    return playbooks


class LanguageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lang: str | None = Field(
        default=None,
        max_length=16,
        description="zh-CN or en (zh, en-GB ... are understood); by default the request's",
    )

    @field_validator("lang")
    @classmethod
    def _supported(cls, value: str | None) -> str | None:
        if value is None:
            return None
        lang = normalise(value)
        if lang is None:
            raise ValueError(f"use one of {', '.join(LANGUAGES)}")
        return lang


async def api_playbooks(request: Request, query: LanguageQuery) -> Response:
    """Every incident playbook, in one language (the request's, zh-CN by default).

    Public knowledge, the same for everyone: the browser and the service
    worker may keep it and revalidate it cheaply by its ETag.
    """
    lang = query.lang or request.state.lang
    lib = library(request)
    etag = f'"{lib.version}-{lang}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Cookie"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return reply(lib.shape(lang), headers=headers)


async def index_page(request: Request) -> Response:
    return render(request, "playbooks.html", library=library(request))


async def guide_page(request: Request) -> Response:
    incident = library(request).incident(request.path_params["incident_id"])
    if incident is None:
        raise HTTPException(404, "No such playbook.")
    return render(request, "playbook.html", incident=incident)


routes = [
    ApiRoute(
        "GET",
        "/api/playbooks",
        api_playbooks,
        login=False,
        query=LanguageQuery,
        responses={200: LibraryOut, 304: "Not changed since the ETag given in If-None-Match."},
    ),
    Route("/playbooks", index_page, methods=["GET"], include_in_schema=False),
    Route("/playbooks/{incident_id}", guide_page, methods=["GET"], include_in_schema=False),
]
