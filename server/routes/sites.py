"""Sites and their emergency contacts: read by members, written by admins."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server import sites
from server.api import ApiRoute, reply, written
from server.models import Role, User
from server.sites import ContactIn, ContactOut, SiteAdminOut, SiteIn, SiteList, SiteOut


async def list_sites(request: Request, user: User) -> Response:
    """The sites the user belongs to (every site, for an admin)."""
    return reply(await sites.list_sites(user))


async def get_site(request: Request, user: User) -> Response:
    """One site, its staff and its emergency contacts; only for its members and admins."""
    return reply(await sites.get_site(user, request.path_params["code"]))


async def put_site(request: Request, user: User, body: SiteIn) -> Response:
    """Add a site under a short code, or rename it."""
    return written(await sites.put_site(user, request.path_params["code"], body))


async def put_contact(request: Request, user: User, body: ContactIn) -> Response:
    """Add or change one of the site's emergency numbers (under an id the client made).

    The report flows of its incident types offer it as a one-tap call beside
    110/120/119, and the 通讯录 page lists it.
    """
    params = request.path_params
    result = await sites.put_contact(
        request.app.state.context, user, params["code"], params["contact_id"], body
    )
    return written(result)


async def delete_contact(request: Request, user: User) -> Response:
    """Remove one of the site's emergency numbers (no error if it is gone already)."""
    params = request.path_params
    await sites.delete_contact(user, params["code"], params["contact_id"])
    return Response(status_code=204)


ADMIN = [Role.ADMIN]

routes = [
    ApiRoute("GET", "/api/sites", list_sites, responses={200: SiteList}),
    ApiRoute(
        "GET",
        "/api/sites/{code}",
        get_site,
        responses={
            200: SiteOut,
            403: "The user does not belong to this site.",
            404: "No such site.",
        },
    ),
    ApiRoute(
        "PUT",
        "/api/sites/{code}",
        put_site,
        roles=ADMIN,
        body=SiteIn,
        responses={
            201: (SiteAdminOut, "Added: the site."),
            200: (SiteAdminOut, "Renamed, or the same already: the site."),
            422: "The code is not 1 to 32 letters, digits, - or _; or the name is empty.",
        },
    ),
    ApiRoute(
        "PUT",
        "/api/sites/{code}/contacts/{contact_id}",
        put_contact,
        roles=ADMIN,
        body=ContactIn,
        responses={
            201: (ContactOut, "Added: the contact."),
            200: (ContactOut, "Changed, or the same already: the contact."),
            404: "No such site.",
            409: "The contact id belongs to another site.",
            422: "A phone that is not digits, + - and spaces; an unknown incident type; a bad id.",
        },
    ),
    ApiRoute(
        "DELETE",
        "/api/sites/{code}/contacts/{contact_id}",
        delete_contact,
        roles=ADMIN,
        responses={204: "Removed (or was not there).", 404: "No such site.", 422: "A bad id."},
    ),
]
