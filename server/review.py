"""The review that closes an incident: 分析 (analysis) and 改善 (corrective actions).

分析: one verdict per analysis item of the report's playbook (ok, gap, n/a),
a gap always with a note saying what fell short. 改善: actions with an owner
of the site and a due day, which the owner marks done and someone else
re-checks (复查); a failed re-check sends the action back to its owner.
An incident closes only when every item is answered and every action has
passed its re-check (see :func:`missing`); an admin may close anyway, with
a reason on the record.

Every write is a PUT that is safe to resend: the same body again answers 200
and appends nothing.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, cast

from pydantic import BaseModel, Field
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.access import (
    may_own_action,
    report_for,
    require_not_owner,
    require_open,
    require_owner,
)
from server.alerts.queue import notify_action
from server.context import Context
from server.errors import N_, ApiError, Joined, Msg, invalid
from server.models import (
    ActionStatus,
    AnalysisAnswer,
    CorrectiveAction,
    Event,
    Photo,
    Report,
    Site,
    User,
    Verdict,
)
from server.report_shapes import ReportOut, report_out
from server.schemas import EARLIEST, IN_RANGE, LATEST, Id, Written, parse_id, parse_report_id

MAX_TEXT = 2000


class AnalysisIn(BaseModel):
    """The answer to one 分析 item."""

    verdict: Verdict = Field(description="ok: it held; gap: it fell short (needs a note); na")
    note: str = Field(default="", max_length=MAX_TEXT)


class ActionIn(BaseModel):
    """A corrective action: what, who (a member of the site), by when, from which 改善 item."""

    description: str = Field(min_length=1, max_length=MAX_TEXT)
    owner: str = Field(min_length=1, max_length=64, description="the owner's username")
    due: date = Field(
        ge=EARLIEST.date(),
        lt=LATEST.date(),
        description=f"YYYY-MM-DD, the last day to do it ({IN_RANGE})",
    )
    item: int | None = Field(default=None, ge=0, description="index of the playbook's 改善 item")


class DoneIn(BaseModel):
    """What the owner did, with photos of the report that show it."""

    note: str = Field(default="", max_length=MAX_TEXT)
    photos: list[Id] = Field(default_factory=list, max_length=20)


class CheckIn(BaseModel):
    """The re-check (复查): did the action do what it should? A failure says why."""

    passed: bool
    note: str = Field(default="", max_length=MAX_TEXT)


# --- 分析 ----------------------------------------------------------------------


async def answer_analysis(
    ctx: Context, user: User, report_id: str, index: int, body: AnalysisIn
) -> Written[ReportOut]:
    """Answer 分析 item ``index`` of the report's playbook."""
    report = await report_for(user, parse_report_id(report_id))
    incident = ctx.library.of_report(report)
    count = len(incident.analysis) if incident else 0
    if index >= count:
        raise invalid(
            "index",
            Msg("this playbook has {count} 分析 items (0 to {last}).", count=count, last=count - 1),
        )
    note = body.note.strip()
    if body.verdict == Verdict.GAP and not note:
        raise invalid("note", "a gap needs a note saying what fell short.")
    require_open(report)
    found = await AnalysisAnswer.get_or_none(report_id=report.id, item_index=index)
    if found is not None and (found.verdict, found.note) == (body.verdict, note):
        return Written(await report_out(report, ctx))
    try:
        async with in_transaction():
            if found is None:
                await AnalysisAnswer.create(
                    report_id=report.id,
                    item_index=index,
                    verdict=body.verdict,
                    note=note,
                    answered_by_id=user.id,
                )
            else:
                await AnalysisAnswer.filter(id=found.id).update(
                    verdict=body.verdict, note=note, answered_by_id=user.id, updated_at=ctx.clock()
                )
            await _event(
                report, user, "analysis", index=index, verdict=body.verdict.value, note=note
            )
    except IntegrityError:
        # Answered at the same moment by another request: decide again against it.
        return await answer_analysis(ctx, user, report_id, index, body)
    ctx.committed()
    return Written(await report_out(report, ctx), created=True)


# --- 改善 ----------------------------------------------------------------------


def _action_id(raw: str) -> uuid.UUID:
    return parse_id(raw, "action_id")


async def _action_of(report: Report, action_id: uuid.UUID) -> CorrectiveAction:
    action = await CorrectiveAction.get_or_none(id=action_id, report_id=report.id)
    if action is None:
        raise ApiError(404, "not_found", "No such action on this report.")
    return action


async def _member(report: Report, username: str) -> User:
    """The owner named: an active user of the report's site (or an admin)."""
    owner = await User.get_or_none(username=username, is_active=True)
    if owner is None or not await may_own_action(owner, report):
        raise invalid("owner", Msg("{username!r} is not a member of this site.", username=username))
    return owner


async def _event(report: Report, user: User, kind: str, **data: Any) -> None:
    await Event.create(report_id=report.id, actor_id=user.id, kind=kind, data=data)


async def _tell(
    ctx: Context, report: Report, owner: User, kind: str, *, unless: User | None = None
) -> int:
    """Queue a push to an action's owner (not to the one who caused it)."""
    if unless is not None and owner.id == unless.id:
        return 0
    site = await Site.get(id=report.site_id)
    return await notify_action(report, site, owner, kind, ctx.library.titles(report.incident_type))


async def put_action(
    ctx: Context, user: User, report_id: str, action_id: str, body: ActionIn
) -> Written[ReportOut]:
    """Create the action under the client's id, or change it while it is open."""
    report = await report_for(user, parse_report_id(report_id))
    aid = _action_id(action_id)
    incident = ctx.library.of_report(report)
    count = len(incident.improvement) if incident else 0
    if body.item is not None and body.item >= count:
        raise invalid(
            "item",
            Msg("this playbook has {count} 改善 items (0 to {last}).", count=count, last=count - 1),
        )
    owner = await _member(report, body.owner)
    description = body.description.strip()
    if not description:
        raise invalid("description", "say what is to be done.")
    require_open(report)
    wanted = (description, owner.id, body.due, body.item)
    found = await CorrectiveAction.get_or_none(id=aid)
    if found is not None:
        if found.report_id != report.id:
            raise ApiError(409, "conflict", "This action id belongs to another report.")
        if (found.description, found.owner_id, found.due_date, found.item_index) == wanted:
            return Written(await report_out(report, ctx))
        if found.status != ActionStatus.OPEN:
            raise ApiError(
                409, "action_done", "The action is done already: it can no longer be changed."
            )
    data = {
        "action": str(aid),
        "description": description,
        "owner": owner.username,
        "owner_name": owner.display_name,
        "due": body.due.isoformat(),
        "item": body.item,
    }
    try:
        async with in_transaction():
            if found is None:
                await CorrectiveAction.create(
                    id=aid,
                    report_id=report.id,
                    item_index=body.item,
                    description=description,
                    owner_id=owner.id,
                    due_date=body.due,
                    created_by_id=user.id,
                )
                await _event(report, user, "action", **data)
            else:
                await CorrectiveAction.filter(id=aid, status=ActionStatus.OPEN).update(
                    description=description,
                    owner_id=owner.id,
                    due_date=body.due,
                    item_index=body.item,
                    reminded_on=None,
                )
                await _event(report, user, "action_changed", **data)
            new_owner = found is None or found.owner_id != owner.id
            queued = await _tell(ctx, report, owner, "action", unless=user) if new_owner else 0
    except IntegrityError:
        # The same id created at the same moment: decide again against it.
        return await put_action(ctx, user, report_id, action_id, body)
    ctx.committed(queued)
    return Written(await report_out(report, ctx), created=True)


async def mark_done(
    ctx: Context, user: User, report_id: str, action_id: str, body: DoneIn
) -> Written[ReportOut]:
    """``open -> done``, by the action's owner."""
    report = await report_for(user, parse_report_id(report_id))
    action = await _action_of(report, _action_id(action_id))
    require_owner(user, action)
    note = body.note.strip()
    photos = [str(p) for p in body.photos]
    if action.status != ActionStatus.OPEN:
        if (action.done_note, list(action.done_photos or [])) == (note, photos):
            return Written(await report_out(report, ctx))
        raise ApiError(
            409, "wrong_status", Msg("The action is {status} already.", status=action.status.value)
        )
    require_open(report)
    ours = {str(p) for p in await Photo.filter(report_id=report.id).values_list("id", flat=True)}
    for i, photo in enumerate(photos):
        if photo not in ours:
            raise invalid(f"photos.{i}", "not a photo of this report.")
    async with in_transaction():
        moved = await CorrectiveAction.filter(id=action.id, status=ActionStatus.OPEN).update(
            status=ActionStatus.DONE, done_at=ctx.clock(), done_note=note, done_photos=photos
        )
        if not moved:  # marked done at the same moment: answer as to a resend
            return await mark_done(ctx, user, report_id, action_id, body)
        await _event(report, user, "action_done", action=str(action.id), note=note, photos=photos)
    ctx.committed()
    return Written(await report_out(report, ctx), created=True)


async def check(
    ctx: Context, user: User, report_id: str, action_id: str, body: CheckIn
) -> Written[ReportOut]:
    """The re-check of a done action, by someone other than its owner: passed
    -> verified; failed -> open again, and the owner is told."""
    report = await report_for(user, parse_report_id(report_id))
    action = await _action_of(report, _action_id(action_id))
    require_not_owner(user, action)
    note = body.note.strip()
    if not body.passed and not note:
        raise invalid("note", "a failed re-check says what is still wrong.")
    if await _checked_already(report, action, body.passed, note):
        return Written(await report_out(report, ctx))
    if action.status != ActionStatus.DONE:
        raise ApiError(
            409,
            "wrong_status",
            Msg(
                "Only a done action is re-checked; this one is {status}.",
                status=action.status.value,
            ),
        )
    require_open(report)
    queued = 0
    async with in_transaction():
        moved = await CorrectiveAction.filter(id=action.id, status=ActionStatus.DONE).update(
            status=ActionStatus.VERIFIED if body.passed else ActionStatus.OPEN,
            rechecked_at=ctx.clock(),
            rechecked_by_id=user.id,
            recheck_note=note,
        )
        if not moved:  # re-checked at the same moment: answer as to a resend
            return await check(ctx, user, report_id, action_id, body)
        await _event(
            report, user, "action_checked", action=str(action.id), passed=body.passed, note=note
        )
        if not body.passed and action.owner_id is not None:
            owner = await User.get(id=action.owner_id)
            queued = await _tell(ctx, report, owner, "check_failed")
    ctx.committed(queued)
    return Written(await report_out(report, ctx), created=True)


async def _checked_already(
    report: Report, action: CorrectiveAction, passed: bool, note: str
) -> bool:
    """This very re-check is the action's last event: a resend."""
    if action.rechecked_at is None or action.status == ActionStatus.DONE:
        return False
    recent = (
        await Event.filter(report_id=report.id, kind__in=["action_checked", "action_done"])
        .order_by("-id")
        .limit(500)
    )
    last = next((e for e in recent if e.data.get("action") == str(action.id)), None)
    return (
        last is not None
        and last.kind == "action_checked"
        and last.data.get("passed") == passed
        and last.data.get("note") == note
    )


# --- what closing needs --------------------------------------------------------


async def unfinished(ctx: Context, report: Report) -> ApiError | None:
    """Why ``report`` may not close yet, as the 409 to answer, or None.

    The error's ``missing`` says exactly what: the 分析 items not answered
    (their indexes) and the actions not re-checked and passed (their ids).
    """
    incident = ctx.library.of_report(report)
    # values_list(flat=True) gives bare values; tortoise types them as tuples.
    answered = set(
        cast(
            "list[int]",
            await AnalysisAnswer.filter(report_id=report.id).values_list("item_index", flat=True),
        )
    )
    count = len(incident.analysis) if incident else 0
    items = [i for i in range(count) if i not in answered]
    actions = await CorrectiveAction.filter(report_id=report.id).exclude(
        status=ActionStatus.VERIFIED
    )
    if not items and not actions:
        return None
    parts: list[str] = []
    # Marked apart: pybabel sees no message nested two calls deep.
    between = N_(". ")
    if items:
        numbers = Joined((str(i + 1) for i in items), ", ")
        parts.append(Msg("分析 items not answered: {items}", items=numbers))
    if actions:
        listed = Joined(
            Msg("{description} ({status})", description=a.description[:40], status=a.status.value)
            for a in actions
        )
        parts.append(Msg("actions not re-checked and passed: {actions}", actions=listed))
    return ApiError(
        409,
        "review_incomplete",
        Msg(
            "Not yet: {missing}. (An admin may close anyway, giving a reason.)",
            missing=Joined(parts, between),
        ),
        missing={"analysis": items, "actions": [str(a.id) for a in actions]},
    )
