"""Sites and the people in them, as the logged-in user may see them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.auth import current_user, require_site, requires, revoke_sessions
from server.errors import ApiError
from server.models import Role, Site, User


@requires()
async def list_sites(request: Request) -> Response:
    """Sites.
    ---
    summary: The sites the user belongs to (every site, for an admin).
    responses:
      200: {description: "{sites: [{code, name}]}"}
      401: {description: Not logged in.}
    """
    user = current_user(request)
    query = Site.all() if user.role == Role.ADMIN else user.sites.all()
    sites = await query.order_by("code")
    return JSONResponse({"sites": [{"code": s.code, "name": s.name} for s in sites]})


@requires()
async def get_site(request: Request) -> Response:
    """One site.
    ---
    summary: One site and its staff; only for its members and admins.
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: "{code, name, staff: [{username, display_name, role}]}"}
      403: {description: The user does not belong to this site.}
      404: {description: No such site.}
    """
    user = current_user(request)
    site = await Site.get_or_none(code=request.path_params["code"])
    if site is None:
        raise ApiError(404, "not_found", "No such site.")
    await require_site(user, site)
    staff = await site.users.filter(is_active=True).order_by("username")
    return JSONResponse(
        {
            "code": site.code,
            "name": site.name,
            "staff": [
                {"username": u.username, "display_name": u.display_name, "role": u.role.value}
                for u in staff
            ],
        }
    )


@requires(Role.ADMIN)
async def revoke_user_sessions(request: Request) -> Response:
    """Revoke a user's sessions.
    ---
    summary: Log a user out everywhere (a lost phone); admins only.
    parameters:
      - {name: username, in: path, required: true, schema: {type: string}}
    responses:
      204: {description: Every session of that user ends at its next request.}
      403: {description: Not an admin.}
      404: {description: No such user.}
    """
    target = await User.get_or_none(username=request.path_params["username"])
    if target is None:
        raise ApiError(404, "not_found", "No such user.")
    await revoke_sessions(target)
    return Response(status_code=204)


routes = [
    Route("/api/sites", list_sites, methods=["GET"]),
    Route("/api/sites/{code}", get_site, methods=["GET"]),
    Route("/api/users/{username}/sessions", revoke_user_sessions, methods=["DELETE"]),
]
