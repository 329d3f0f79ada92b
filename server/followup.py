"""The follow-up of a report: acknowledge, assign, publish the reply, repair, close, reopen.

The status machine, enforced here and nowhere else:

    new -> acknowledged -> assigned -> repaired -> closed
                        \\-----------------------> closed   (no repair needed, e.g. a dispute)
    assigned -> assigned (another technician), repaired -> assigned (someone else redoes it)
    closed -> reopened to where it was before closing

Every action is a PUT that is safe to resend: the same request again answers
200 and adds nothing. A step the machine does not allow is a 409 that names
the current status. Each change moves the status with one conditional
UPDATE (``WHERE status IN (...)``), so two supervisors acting at once cannot
both win, and appends its event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tortoise.transactions import in_transaction

from server.access import (
    may_be_assigned,
    report_for,
    require_assignee,
    require_waiver_by_admin,
)
from server.alerts.queue import notify_assignment, notify_repaired, notify_reply, tell_channels
from server.context import Context
from server.errors import N_, ApiError, Msg, invalid
from server.models import Event, Photo, PhotoKind, Report, ReportStatus, Site, User
from server.report_shapes import ReportOut, report_out
from server.review import unfinished
from server.schemas import Written, parse_report_id

MAX_TEXT = 4000
S = ReportStatus
AT_OR_AFTER_ASSIGNED = (S.ASSIGNED, S.REPAIRED, S.CLOSED)
CLOSABLE = {S.ACKNOWLEDGED, S.REPAIRED}


class Acknowledgement(BaseModel):
    """Nothing to say: an empty object (or no body at all)."""

    model_config = ConfigDict(extra="forbid")


class Assignment(BaseModel):
    """Who repairs it: a technician of the report's site."""

    assignee: str = Field(min_length=1, max_length=64, description="the technician's username")


class Reply(BaseModel):
    """The approved wording (统一回复口径) for residents, media and families."""

    text: str = Field(min_length=1, max_length=MAX_TEXT)


class Repair(BaseModel):
    """What the technician did."""

    note: str = Field(default="", max_length=MAX_TEXT)


class Closure(BaseModel):
    """How the incident ended; an admin may close with the review open, saying why."""

    note: str = Field(default="", max_length=MAX_TEXT)
    waive: str | None = Field(
        default=None,
        max_length=MAX_TEXT,
        description="admins only: close although 分析 or 改善 is unfinished, and why",
    )


class Reopening(BaseModel):
    """Why a closed incident is open again."""

    reason: str = Field(min_length=1, max_length=MAX_TEXT)


# A report's status as a refusal names it (the same words as the API's values).
STATUS_WORDS = {
    ReportStatus.NEW: N_("new"),
    ReportStatus.ACKNOWLEDGED: N_("acknowledged"),
    ReportStatus.ASSIGNED: N_("assigned"),
    ReportStatus.REPAIRED: N_("repaired"),
    ReportStatus.CLOSED: N_("closed"),
}


def _not_now(report: Report, action: str) -> ApiError:
    return ApiError(
        409,
        "wrong_status",
        Msg(
            "Cannot {action}: the report is {status}.",
            action=Msg(action),
            status=Msg(STATUS_WORDS[report.status]),
        ),
        current=report.status.value,
    )


async def _change(
    ctx: Context,
    user: User,
    report: Report,
    *,
    allowed: set[ReportStatus],
    action: str,
    fields: dict[str, Any],
    event: tuple[str, dict[str, Any]],
    done: Callable[[Report], bool],
    notify: Callable[[Report, Site], Awaitable[int]] | None = None,
) -> Written[ReportOut]:
    """Move ``report`` from one of ``allowed`` with ``fields``; one event; pushes queued.

    ``done`` says whether what is asked is already so: then it is a resend,
    answered unchanged. The conditional UPDATE is the arbiter between
    requests at the same moment: the one that finds the status moved is a
    resend if ``done`` now holds, else refused with the status it found.
    """
    if done(report):
        return await _unchanged(ctx, report)
    kind, data = event
    async with in_transaction():
        moved = await Report.filter(id=report.id, status__in=allowed).update(**fields)
        if not moved:
            await report.refresh_from_db()
            if done(report):
                return await _unchanged(ctx, report)
            raise _not_now(report, action)
        await Event.create(report_id=report.id, actor=user, kind=kind, data=data)
        await report.refresh_from_db()
        queued = 0
        if notify is not None:
            site = await Site.get(id=report.site_id)
            queued = await notify(report, site)
    ctx.committed(queued)
    return Written(await report_out(report, ctx), created=True)


async def _unchanged(ctx: Context, report: Report) -> Written[ReportOut]:
    """A resend: what it asked for is already so."""
    return Written(await report_out(report, ctx))


async def acknowledge(
    ctx: Context, user: User, report_id: str, body: Acknowledgement
) -> Written[ReportOut]:
    """``new -> acknowledged``: a supervisor has seen it and is on it."""
    report = await report_for(user, parse_report_id(report_id))
    now = ctx.clock()
    return await _change(
        ctx,
        user,
        report,
        allowed={S.NEW},
        action=N_("acknowledge"),
        fields={"status": S.ACKNOWLEDGED, "acknowledged_by_id": user.id, "acknowledged_at": now},
        event=("acknowledged", {}),
        done=lambda r: r.acknowledged_at is not None,
    )


async def assign(ctx: Context, user: User, report_id: str, body: Assignment) -> Written[ReportOut]:
    """``-> assigned`` to a technician of the report's site, who is told at once."""
    report = await report_for(user, parse_report_id(report_id))
    technician = await User.get_or_none(username=body.assignee, is_active=True)
    if technician is None or not await may_be_assigned(technician, report):
        raise invalid(
            "assignee",
            Msg("{assignee!r} is not a technician of this site.", assignee=body.assignee),
        )
    data: dict[str, Any] = {
        "assignee": technician.username,
        "display_name": technician.display_name,
    }
    if report.assignee_id is not None:
        data["previous"] = await _username(report.assignee_id)
    title = ctx.library.titles(report.incident_type)
    return await _change(
        ctx,
        user,
        report,
        allowed={S.ACKNOWLEDGED, S.ASSIGNED, S.REPAIRED},
        action=N_("assign"),
        fields={"status": S.ASSIGNED, "assignee_id": technician.id, "repaired_at": None},
        event=("assigned", data),
        done=lambda r: r.assignee_id == technician.id and r.status in AT_OR_AFTER_ASSIGNED,
        notify=lambda r, site: notify_assignment(r, site, technician, title),
    )


async def _username(user_id: int) -> str | None:
    found = await User.get_or_none(id=user_id)
    return found.username if found else None


async def publish_reply(
    ctx: Context, user: User, report_id: str, body: Reply
) -> Written[ReportOut]:
    """The approved wording, shown to everyone working on the incident; the guard is told."""
    report = await report_for(user, parse_report_id(report_id))
    text = body.text.strip()
    if not text:
        raise invalid("text", "the reply is empty.")
    title = ctx.library.titles(report.incident_type)
    return await _change(
        ctx,
        user,
        report,
        allowed=set(S) - {S.CLOSED},
        action=N_("publish a reply"),
        fields={"reply_text": text, "reply_at": ctx.clock(), "reply_by_id": user.id},
        event=("reply", {"text": text}),
        done=lambda r: r.reply_text == text,
        notify=lambda r, site: notify_reply(r, site, title),
    )


async def mark_repaired(
    ctx: Context, user: User, report_id: str, body: Repair
) -> Written[ReportOut]:
    """``assigned -> repaired``, by the assignee, once a photo shows the result."""
    report = await report_for(user, parse_report_id(report_id))
    require_assignee(user, report)
    note = body.note.strip()

    def done(r: Report) -> bool:
        return r.status in (S.REPAIRED, S.CLOSED) and r.repair_note == note

    if (
        not done(report)
        and report.status == S.ASSIGNED
        and not await Photo.exists(report_id=report.id, kind=PhotoKind.REPAIR_AFTER)
    ):
        raise ApiError(
            409,
            "photo_needed",
            "Add a photo of the finished repair (kind repair_after) before marking it repaired.",
        )
    title = ctx.library.titles(report.incident_type)

    async def notify(r: Report, site: Site) -> int:
        # The site's supervisors' devices, and its group robots told of repairs.
        return await notify_repaired(r, site, title) + await tell_channels(ctx, r, site, "repaired")

    return await _change(
        ctx,
        user,
        report,
        allowed={S.ASSIGNED},
        action=N_("mark it repaired"),
        fields={"status": S.REPAIRED, "repaired_at": ctx.clock(), "repair_note": note},
        event=("repaired", {"note": note}),
        done=done,
        notify=notify,
    )


async def close(ctx: Context, user: User, report_id: str, body: Closure) -> Written[ReportOut]:
    """``acknowledged|repaired -> closed``: the incident is over."""
    report = await report_for(user, parse_report_id(report_id))
    note = body.note.strip()
    waiver = (body.waive or "").strip()
    require_waiver_by_admin(user, waiver)
    if not (report.status == S.CLOSED and report.closing_note == note):
        if report.status not in CLOSABLE:
            raise _not_now(report, N_("close"))  # the status first, then the review
        blocked = await unfinished(ctx, report)
        if blocked is not None and not waiver:
            raise blocked
        if blocked is None:
            waiver = ""  # nothing was waived
    return await _change(
        ctx,
        user,
        report,
        allowed=CLOSABLE,
        action=N_("close"),
        fields={
            "status": S.CLOSED,
            "closed_by_id": user.id,
            "closed_at": ctx.clock(),
            "closing_note": note,
            "closing_waiver": waiver,
        },
        event=("closed", {"note": note, "from": report.status.value, "waived": waiver}),
        done=lambda r: r.status == S.CLOSED and r.closing_note == note,
    )


async def reopen(ctx: Context, user: User, report_id: str, body: Reopening) -> Written[ReportOut]:
    """``closed ->`` the status it was closed from, with the reason recorded."""
    report = await report_for(user, parse_report_id(report_id))
    reason = body.reason.strip()
    if report.status != S.CLOSED:
        last = await Event.filter(report_id=report.id).order_by("-id").first()
        if last and last.kind == "reopened" and last.data.get("reason") == reason:
            return await _unchanged(ctx, report)
        raise _not_now(report, N_("reopen"))
    closed = await Event.filter(report_id=report.id, kind="closed").order_by("-id").first()
    previous = S((closed.data if closed else {}).get("from", S.ACKNOWLEDGED.value))
    return await _change(
        ctx,
        user,
        report,
        allowed={S.CLOSED},
        action=N_("reopen"),
        fields={
            "status": previous,
            "closed_by_id": None,
            "closed_at": None,
            "closing_note": "",
            "closing_waiver": "",
        },
        event=("reopened", {"reason": reason, "to": previous.value}),
        done=lambda r: False,  # a resend was recognised above, by the last event
    )
