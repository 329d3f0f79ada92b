"""Sites and the people in them, as the logged-in user may see them."""

from __future__ import annotations

from server.auth import require_site
from server.errors import ApiError
from server.models import Role, Site, User
from server.schemas import Shape, SiteRef


class StaffMember(Shape):
    username: str
    display_name: str
    role: Role


class SiteList(Shape):
    """The sites the user belongs to, by code."""

    sites: list[SiteRef]


class SiteOut(Shape):
    """A site and its active staff."""

    code: str
    name: str
    staff: list[StaffMember]


async def list_sites(user: User) -> SiteList:
    """The sites ``user`` belongs to (every site, for an admin)."""
    query = Site.all() if user.role == Role.ADMIN else user.sites.all()
    return SiteList(sites=[SiteRef.of(s) for s in await query.order_by("code")])


async def get_site(user: User, code: str) -> SiteOut:
    """One site and its staff; only for its members and admins."""
    site = await Site.get_or_none(code=code)
    if site is None:
        raise ApiError(404, "not_found", "No such site.")
    await require_site(user, site)
    staff = await site.users.filter(is_active=True).order_by("username")
    return SiteOut(
        code=site.code,
        name=site.name,
        staff=[
            StaffMember(username=u.username, display_name=u.display_name, role=u.role)
            for u in staff
        ],
    )
