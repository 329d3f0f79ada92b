"""Who may see or do what: every rule of access, in one place to audit.

Each rule is a function here; services and pages call them and decide
nothing about access themselves. ``require_*`` raises the refusal, ``may_*``
and the other predicates answer yes or no where the caller words the
refusal as part of its input check (a 422 on a field).

1. Logged in: everything but logging in, the health check and the shell's
   own files needs a session (401, :func:`current_user`).
2. Roles: an API route names the roles it is for and admins pass every such
   check (403, :func:`require_role`); the administration pages name theirs
   the same way (:func:`require_page_role`), the dashboard is for
   supervisors and admins (:func:`require_dashboard`). Supervisors and
   admins supervise (:func:`supervises`); only admins change people, sites,
   contacts and channels (:func:`administers`).
3. Sites: a user belongs to their sites, an admin to every site
   (:func:`sees_every_site`, :func:`sites_visible_to`); anything asked of a
   site of someone else's is refused (403, :func:`require_site`).
4. Reports: an admin sees every report, a supervisor their sites' reports, a
   technician those they reported, are assigned or own a corrective action
   of, a guard those they reported or own an action of
   (:func:`reports_visible_to`, :func:`may_see_report`). A report asked for
   by id is 404 when there is none, then 403 when it is not the user's to
   see (:func:`report_for`).
5. Closed: nothing more is added to a closed incident (409, :func:`require_open`).
6. Steps: only the reporter ticks and unticks a report's steps
   (403, :func:`require_reporter`); a report id sent again is the
   reporter's own resend, or refused (403, :func:`require_resender`).
7. Photos: anyone who sees a report adds evidence; repair photos come from
   the assignee, supervisors and admins (403, :func:`require_photo_kind`).
8. Follow-up: only the assigned technician marks a repair done
   (403, :func:`require_assignee`); a report is assigned to an active
   technician of its site (422, :func:`may_be_assigned`); only an admin
   closes with the review unfinished (403, :func:`require_waiver_by_admin`).
9. Review: an action's owner is an active member of the report's site, or
   an admin (422, :func:`may_own_action`); only the owner marks it done
   (403, :func:`require_owner`), and someone else re-checks it
   (403, :func:`require_not_owner`).
10. People: an admin sees everyone, a supervisor the staff of their sites
    (:func:`users_visible_to`); nobody deactivates themselves or changes
    their own role (422, :func:`require_not_own_lockout`).
11. Playbooks: only admins edit and publish the company's layer; a site's
    layer is edited by admins and by the supervisors of that site, who run
    the estate and know its lift company and pump room (403 for other
    roles, 422 on ``site`` for a site not theirs, :func:`require_playbook_editor`).
    A site's playbooks are read by its members only (:func:`require_site`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from functools import wraps
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from server.errors import N_, ApiError, Joined, Msg, invalid
from server.models import (
    CorrectiveAction,
    PhotoKind,
    Report,
    ReportStatus,
    Role,
    Site,
    User,
)

# Who may do something, as a 403 names them.
ROLE_NAMES = {
    Role.GUARD: N_("guards"),
    Role.TECHNICIAN: N_("technicians"),
    Role.SUPERVISOR: N_("supervisors"),
    Role.ADMIN: N_("admins"),
}
SUPERVISING = frozenset({Role.SUPERVISOR, Role.ADMIN})


# --- 1. logged in ---------------------------------------------------------------


def current_user(request: Request) -> User:
    """The logged-in user, or a 401."""
    # request.state is untyped; the auth middleware puts a User there, or nothing.
    user: User | None = getattr(request.state, "user", None)
    if user is None:
        raise ApiError(401, "not_authenticated", "Log in first.")
    return user


# --- 2. roles -------------------------------------------------------------------


def require_role(user: User, roles: Iterable[Role]) -> None:
    """403 unless ``user`` has one of ``roles`` (admins pass every role check)."""
    allowed = set(roles)
    if user.role != Role.ADMIN and user.role not in allowed:
        names = Joined((Msg(ROLE_NAMES[r]) for r in sorted(allowed)), ", ")
        raise ApiError(403, "forbidden", Msg("Only {names} may do this.", names=names))


Page = Callable[[Request, User], Awaitable[Response]]
# The administration pages: the people, sites and playbooks of one's sites.
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


def page_for(*roles: Role) -> Callable[[Page], Callable[[Request], Awaitable[Response]]]:
    """A page for ``roles``: the login form (and back) without a session, the
    403 page for anyone else; the handler gets the user."""

    def wrap(handler: Page) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            user: User | None = request.state.user
            if user is None:
                path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            require_page_role(user, roles)
            return await handler(request, user)

        return endpoint

    return wrap


def require_page_role(user: User, roles: Iterable[Role]) -> None:
    """The 403 page unless ``user`` has one of ``roles`` (listed in full: a
    page names admins too)."""
    listed = tuple(roles)
    if user.role not in listed:
        who = Joined((Msg(ROLE_NAMES[r]) for r in listed), N_(" and "))
        raise ApiError(403, "forbidden", Msg("This page is for {who} only.", who=who))


def require_dashboard(user: User) -> None:
    """The dashboard page is for supervisors and admins (a 403 page)."""
    if not supervises(user):
        raise HTTPException(403, "The dashboard is for supervisors and admins.")


def supervises(user: User) -> bool:
    """Supervisors and admins: the inbox, the dashboard, a report's follow-up."""
    return user.role in SUPERVISING


def administers(user: User) -> bool:
    """Admins: they change people, sites, contacts and channels."""
    return user.role == Role.ADMIN


# --- 3. sites -------------------------------------------------------------------


def sees_every_site(user: User) -> bool:
    """Admins belong to every site."""
    return user.role == Role.ADMIN


def sites_visible_to(user: User) -> QuerySet[Site]:
    """The sites ``user`` belongs to (every site, for an admin)."""
    return Site.all() if sees_every_site(user) else user.sites.all()


async def require_site(user: User, site: Site) -> None:
    """403 unless ``user`` belongs to ``site``; admins see every site."""
    if sees_every_site(user):
        return
    if site.id not in await user.site_ids():
        raise ApiError(403, "forbidden_site", "You do not belong to this site.")


# --- 4. reports -----------------------------------------------------------------


async def reports_visible_to(user: User) -> QuerySet[Report]:
    """The reports ``user`` may see: own ones, assigned ones, or their sites'."""
    if user.role == Role.ADMIN:
        return Report.all()
    if user.role == Role.SUPERVISOR:
        return Report.filter(site_id__in=await user.site_ids())
    # Others see what they reported, what they repair, and where they own
    # a corrective action.
    owned = Q(id__in=Subquery(CorrectiveAction.filter(owner_id=user.id).values("report_id")))
    if user.role == Role.TECHNICIAN:
        return Report.filter(Q(reporter_id=user.id) | Q(assignee_id=user.id) | owned)
    return Report.filter(Q(reporter_id=user.id) | owned)


async def may_see_report(user: User, report: Report) -> bool:
    """Whether ``report`` is among :func:`reports_visible_to` ``user``."""
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.SUPERVISOR:
        return report.site_id in await user.site_ids()
    if report.reporter_id == user.id:
        return True
    if user.role == Role.TECHNICIAN and report.assignee_id == user.id:
        return True
    return await CorrectiveAction.exists(report_id=report.id, owner_id=user.id)


async def report_for(user: User, report_id: uuid.UUID) -> Report:
    """The report, or 404 if there is none, 403 if ``user`` may not see it."""
    report = await Report.get_or_none(id=report_id)
    if report is None:
        raise ApiError(404, "not_found", "No such report.")
    if not await may_see_report(user, report):
        raise ApiError(403, "forbidden", "This report is not yours to see.")
    return report


# --- 5. closed ------------------------------------------------------------------


def require_open(report: Report) -> None:
    """409 once the incident is closed: nothing new is added to a closed record."""
    if report.status == ReportStatus.CLOSED:
        raise ApiError(409, "closed", "This incident is closed: nothing more can be added to it.")


# --- 6. steps -------------------------------------------------------------------


def may_tick(user: User, report: Report) -> bool:
    """Steps are the reporter's record of what they did on the spot: only
    they tick them, whoever else may see or follow up the report."""
    return report.reporter_id == user.id


def require_reporter(user: User, report: Report) -> None:
    """403 unless ``user`` reported ``report`` (see :func:`may_tick`)."""
    if not may_tick(user, report):
        raise ApiError(
            403, "forbidden", "Only the person who reported this incident ticks its steps."
        )


async def require_resender(user: User, existing: Report) -> None:
    """403 unless a report sent again under ``existing``'s id is its reporter's resend."""
    if not await may_see_report(user, existing):
        raise ApiError(403, "forbidden", "This report id belongs to a report you may not see.")
    if existing.reporter_id != user.id:
        # A resend comes from the reporter's phone; from anyone else it would
        # record the steps in their name.
        raise ApiError(403, "forbidden", "This report id belongs to a report someone else sent.")


# --- 7. photos ------------------------------------------------------------------


def require_photo_kind(user: User, report: Report, kind: PhotoKind) -> None:
    """Evidence from anyone who sees the report; repair photos from its
    assignee, or supervisors and admins documenting a job themselves."""
    if kind != PhotoKind.EVIDENCE and not (user.id == report.assignee_id or supervises(user)):
        raise ApiError(
            403, "forbidden", "Repair photos come from the technician it is assigned to."
        )


# --- 8. follow-up ---------------------------------------------------------------


def require_assignee(user: User, report: Report) -> None:
    """403 unless ``user`` is the technician ``report`` is assigned to."""
    if report.assignee_id != user.id:
        raise ApiError(403, "forbidden", "Only the technician it is assigned to marks it repaired.")


async def may_be_assigned(technician: User, report: Report) -> bool:
    """Whether ``technician`` (an active user) is a technician of the report's site."""
    return technician.role == Role.TECHNICIAN and report.site_id in await technician.site_ids()


def require_waiver_by_admin(user: User, waiver: str) -> None:
    """Only an admin closes an incident with its review unfinished (a waiver)."""
    if waiver and user.role != Role.ADMIN:
        raise ApiError(403, "forbidden", "Only an admin may close with the review unfinished.")


# --- 9. review ------------------------------------------------------------------


async def may_own_action(owner: User, report: Report) -> bool:
    """Whether ``owner`` (an active user) may own an action of ``report``: a
    member of its site, or an admin."""
    return sees_every_site(owner) or report.site_id in await owner.site_ids()


def require_owner(user: User, action: CorrectiveAction) -> None:
    """403 unless ``user`` owns ``action`` (who marks it done)."""
    if action.owner_id != user.id:
        raise ApiError(403, "forbidden", "Only the action's owner marks it done.")


def require_not_owner(user: User, action: CorrectiveAction) -> None:
    """403 if ``user`` owns ``action``: the re-check is someone else's."""
    if action.owner_id == user.id:
        raise ApiError(
            403, "forbidden", "The re-check is by someone other than the action's owner."
        )


# --- 10. people -----------------------------------------------------------------


async def users_visible_to(viewer: User) -> QuerySet[User]:
    """Everyone (admins), or the staff of the viewer's sites (supervisors)."""
    if sees_every_site(viewer):
        return User.all()
    return User.filter(sites__id__in=await viewer.site_ids())


def require_not_own_lockout(actor: User | None, target: User, active: bool, role: Role) -> None:
    """Nobody deactivates themselves or changes their own role (the last door out)."""
    if actor is not None and target.id == actor.id and (not active or role != target.role):
        raise invalid("active" if not active else "role", "not for your own account.")


# --- 11. playbooks ------------------------------------------------------------------


async def require_playbook_editor(user: User, site: Site | None) -> None:
    """Who edits a layer: the company's, admins; a site's, admins and the
    site's own supervisors (a site of someone else's is a 422 on ``site``)."""
    if site is None:
        require_role(user, [Role.ADMIN])
        return
    require_role(user, [Role.SUPERVISOR])
    if not sees_every_site(user) and site.id not in await user.site_ids():
        raise invalid(
            "site",
            Msg("{site!r} is not a site of yours.", site=site.code),
            code="forbidden_site",
            problem="not yours",
        )
