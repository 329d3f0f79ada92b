"""The playbooks: the JSON for the app, the library's editing API, and the
guides to read on a phone."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server import playbook_editing as editing
from server.access import current_user, require_site
from server.api import ApiRoute, Raw, reply
from server.context import Context
from server.errors import ApiError
from server.i18n import LANGUAGES, normalise
from server.models import Role, Site, User
from server.playbook_book import Book
from server.playbook_editing import DiffOut, DraftOut, ImportOut, PublishIn, VersionList, VersionOut
from server.playbook_layers import LayerIn
from server.playbooks import IncidentOut, LibraryOut
from server.sites import member_sites, site_by_code
from server.templating import render


def library(request: Request) -> Book:
    # app.state is untyped; the app's startup puts the Book there.
    playbooks: Book = request.app.state.playbooks
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


class PlaybookQuery(LanguageQuery):
    site: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="a site's code: its own layer merged in (for its members only)",
    )


class SiteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(
        default=None, min_length=1, max_length=32, description="a site's layer; none: the company's"
    )


class DiffQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    before: str = Field(min_length=1, max_length=12, description="a version id")
    after: str = Field(min_length=1, max_length=12, description="a later (or any) version id")


async def _site_of(request: Request, code: str | None) -> int | None:
    """The site whose layer to merge in: its members only (a session needed)."""
    if code is None:
        return None
    user = current_user(request)
    site: Site = await site_by_code(code)
    await require_site(user, site)
    return site.id


async def api_playbooks(request: Request, query: PlaybookQuery) -> Response:
    """Every incident playbook, in one language (the request's, zh-CN by default).

    Each incident names its published ``version`` (what a report follows)
    and each step its ``origin``. Without ``site``, the company's: public
    knowledge, the same for everyone, kept by the browser and the service
    worker and revalidated cheaply by its ETag. With ``site``, that site's
    own layer merged in, for its members.
    """
    lang = query.lang or request.state.lang
    book = library(request)
    await book.fresh()
    site_id = await _site_of(request, query.site)
    etag = f'"{book.version}-{lang}-{site_id or 0}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Cookie"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return reply(book.shape(lang, site_id), headers=headers)


async def api_playbook(request: Request, query: PlaybookQuery) -> Response:
    """One playbook as a guard follows it: with ``site``, that site's layer
    merged over the company's (for its members); with its ``version``."""
    book = library(request)
    await book.fresh()
    site_id = await _site_of(request, query.site)
    incident = book.incident(request.path_params["incident"], site_id)
    if incident is None:
        raise ApiError(404, "not_found", "No such playbook.")
    return reply(incident.shape(query.lang or request.state.lang))


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


async def get_draft(request: Request, user: User, query: SiteQuery) -> Response:
    """The layer being edited (the published one when there is no draft), with
    what it is merged over and the playbook it would publish."""
    incident = request.path_params["incident"]
    return reply(await editing.get_draft(_ctx(request), user, incident, query.site))


async def put_draft(request: Request, user: User, query: SiteQuery, body: LayerIn) -> Response:
    """Replace the draft of the company's layer (or, with ``site``, the site's).

    The body is a layer in the YAML's shape: each list is the layer's order
    of the steps, an entry with the ``key`` of a step below keeps it
    (reworded with ``zh-CN``/``en``, hidden with ``hidden: true``), an entry
    without one is a new step. A new incident type is a draft for an id that
    does not exist yet, with its ``title`` and ``category``.
    """
    incident = request.path_params["incident"]
    return reply(await editing.put_draft(_ctx(request), user, incident, query.site, body))


async def delete_draft(request: Request, user: User, query: SiteQuery) -> Response:
    """Drop the draft: the layer is back to what is published."""
    incident = request.path_params["incident"]
    return reply(await editing.discard_draft(_ctx(request), user, incident, query.site))


async def publish(request: Request, user: User, query: SiteQuery, body: PublishIn) -> Response:
    """Publish the draft as a new version (or, with ``revert_to``, an earlier
    version again), with a note; in the admin log. A company version also
    makes a new version of each site layer over it."""
    incident = request.path_params["incident"]
    version = await editing.publish(_ctx(request), user, incident, query.site, body)
    return reply(
        version,
        status=201,
        headers={"Location": f"/api/playbooks/{incident}/versions/{version.id}"},
    )


async def versions(request: Request, user: User, query: SiteQuery) -> Response:
    """Every published version of the playbook, newest first (with ``site``: the site's)."""
    incident = request.path_params["incident"]
    return reply(await editing.list_versions(_ctx(request), user, incident, query.site))


async def version(request: Request, user: User) -> Response:
    """One version as it was: its layer, and every step with its key and origin."""
    params = request.path_params
    return reply(
        await editing.get_version(_ctx(request), user, params["incident"], params["version"])
    )


async def diff(request: Request, user: User, query: DiffQuery) -> Response:
    """What changed between two versions: steps added, removed (or hidden),
    reworded and moved; the title, severity and replies."""
    incident = request.path_params["incident"]
    found = await editing.diff(_ctx(request), user, incident, query.before, query.after)
    return reply(found)


YAML = "application/yaml"
# The export's data: a library (categories and incidents) or one playbook.
YAML_DATA: dict[str, Any] = {"type": "object", "description": "in the schema of playbooks/"}


async def export_library(request: Request, user: User) -> Response:
    """The company's current library as YAML, in the schema of ``playbooks/``
    (``onsite playbooks check FILE`` validates it; import takes it back)."""
    await library(request).fresh()
    return Response(
        editing.export_library(_ctx(request)),
        media_type=YAML,
        headers={"Content-Disposition": 'attachment; filename="onsite-playbooks.yaml"'},
    )


async def export_one(request: Request, user: User) -> Response:
    """One current company playbook as YAML, an incident file of ``playbooks/``."""
    incident = request.path_params["incident"]
    await library(request).fresh()
    return Response(
        editing.export_one(_ctx(request), incident),
        media_type=YAML,
        headers={"Content-Disposition": f'attachment; filename="{incident}.yaml"'},
    )


async def import_library(request: Request, user: User, body: bytes) -> Response:
    """An export (the library, or one playbook) as company drafts to look over
    and publish: steps whose words match the source's keep them, the rest are
    new, and what the import leaves out is hidden."""
    return reply(await editing.import_library(_ctx(request), user, body))


async def _page_site(request: Request) -> int | None:
    """The site whose playbooks a page shows: the user's first, as on the report flow."""
    user = getattr(request.state, "user", None)
    mine = await member_sites(user) if user is not None else []
    return mine[0].id if mine else None


async def index_page(request: Request) -> Response:
    book = library(request)
    await book.fresh()
    return render(request, "playbooks.html", library=book.for_site(await _page_site(request)))


async def guide_page(request: Request) -> Response:
    book = library(request)
    await book.fresh()
    incident = book.incident(request.path_params["incident_id"], await _page_site(request))
    if incident is None:
        raise HTTPException(404, "No such playbook.")
    return render(request, "playbook.html", incident=incident)


EDIT = [Role.SUPERVISOR]  # and admins; the company's layer is the admins' alone
SITE_OR_COMPANY = "No such site (422 on site), or not the user's to edit (403, or 422 on site)."

routes = [
    ApiRoute(
        "GET",
        "/api/playbooks",
        api_playbooks,
        login=False,
        query=PlaybookQuery,
        responses={
            200: LibraryOut,
            304: "Not changed since the ETag given in If-None-Match.",
            401: "A site was asked for without a session.",
            403: "Not a site of the user's.",
            422: "No such site, or an unknown language.",
        },
    ),
    ApiRoute(
        "GET",
        "/api/playbooks/export",
        export_library,
        roles=EDIT,
        responses={
            200: Raw(YAML, "The library, YAML in the schema of playbooks/.", schema=YAML_DATA)
        },
    ),
    ApiRoute(
        "POST",
        "/api/playbooks/import",
        import_library,
        roles=[Role.ADMIN],
        body=Raw(YAML, "An export: the library, or one playbook.", limit=lambda s: 2 * 1024 * 1024),
        responses={
            200: ImportOut,
            413: "Over 2 MiB.",
            422: "Not a valid export: each problem named.",
        },
    ),
    ApiRoute(
        "GET",
        "/api/playbooks/{incident}",
        api_playbook,
        login=False,
        query=PlaybookQuery,
        responses={
            200: IncidentOut,
            401: "A site was asked for without a session.",
            403: "Not a site of the user's.",
            404: "No such playbook.",
            422: "No such site, or an unknown language.",
        },
    ),
    ApiRoute(
        "GET",
        "/api/playbooks/{incident}/export",
        export_one,
        roles=EDIT,
        responses={
            200: Raw(YAML, "One playbook, an incident file of playbooks/.", schema=YAML_DATA),
            404: "No such playbook.",
        },
    ),
    ApiRoute(
        "GET",
        "/api/playbooks/{incident}/draft",
        get_draft,
        roles=EDIT,
        query=SiteQuery,
        responses={200: DraftOut, 403: SITE_OR_COMPANY, 404: "No such playbook."},
    ),
    ApiRoute(
        "PUT",
        "/api/playbooks/{incident}/draft",
        put_draft,
        roles=EDIT,
        query=SiteQuery,
        body=LayerIn,
        responses={
            200: (DraftOut, "The draft as saved, and the playbook it would publish."),
            403: SITE_OR_COMPANY,
            404: "No such playbook, and the body makes no new type (no title, no category).",
            422: "A bad layer, each field named: a new type without a title or category, "
            "a step without its text, a key named twice, an unknown incident for a site.",
        },
    ),
    ApiRoute(
        "DELETE",
        "/api/playbooks/{incident}/draft",
        delete_draft,
        roles=EDIT,
        query=SiteQuery,
        responses={200: DraftOut, 403: SITE_OR_COMPANY, 404: "No such playbook."},
    ),
    ApiRoute(
        "POST",
        "/api/playbooks/{incident}/publish",
        publish,
        roles=EDIT,
        query=SiteQuery,
        body=PublishIn,
        responses={
            201: (VersionOut, "The new version."),
            403: SITE_OR_COMPANY,
            404: "No such playbook.",
            409: "No draft to publish, or someone published at the same moment.",
            422: "No note, or a revert to a version that is not this playbook's.",
        },
    ),
    ApiRoute(
        "GET",
        "/api/playbooks/{incident}/versions",
        versions,
        query=SiteQuery,
        responses={200: VersionList, 403: "Not a site of the user's.", 404: "No such playbook."},
    ),
    ApiRoute(
        "GET",
        "/api/playbooks/{incident}/versions/{version}",
        version,
        responses={
            200: VersionOut,
            403: "A site's version, of a site not the user's.",
            404: "No such version.",
        },
    ),
    ApiRoute(
        "GET",
        "/api/playbooks/{incident}/diff",
        diff,
        query=DiffQuery,
        responses={
            200: DiffOut,
            403: "A site's version, of a site not the user's.",
            404: "No such version.",
        },
    ),
    Route("/playbooks", index_page, methods=["GET"], include_in_schema=False),
    Route("/playbooks/{incident_id}", guide_page, methods=["GET"], include_in_schema=False),
]
