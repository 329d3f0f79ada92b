"""A report's handling steps: ticked on the phone, sent with the report or one
at a time after it, and unticked when ticked by mistake.

Steps are the reporter's own record (:func:`server.access.require_reporter`).
Each tick is its own idempotent write, merged by step index: the same tick
again changes nothing, a tick of the step at another time is a conflict
(409), and an untick keeps the tick as evidence beside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server.access import report_for, require_open, require_reporter
from server.context import Context
from server.errors import ApiError, Msg, invalid
from server.models import Event, Report, ReportStep, User
from server.report_shapes import ReportOut, report_out
from server.schemas import RECENT, Time, Written, check_recent, iso, parse_report_id

MAX_STEPS = 500


class StepIn(BaseModel):
    index: int = Field(ge=0, lt=MAX_STEPS)
    checked_at: Time = Field(description=f"when it was done: {RECENT}")


class StepTickIn(BaseModel):
    """A handling step done, at the phone's time."""

    checked_at: Time = Field(description=f"when it was done: {RECENT}")


class StepUntickQuery(BaseModel):
    """When a step ticked by mistake was unticked, at the phone's time."""

    at: Time = Field(description=f"when it was unticked: {RECENT}")


# --- checks -------------------------------------------------------------------


def check_index(index: int, handling_count: int, field: str) -> None:
    """422 on ``field`` unless ``index`` is a step of a playbook of ``handling_count``."""
    if index >= handling_count:
        raise invalid(
            field,
            Msg(
                "this playbook has {count} steps (0 to {last}).",
                count=handling_count,
                last=handling_count - 1,
            ),
            problem="no such step",
        )


def check_steps(steps: list[StepIn], handling_count: int, now: datetime) -> None:
    """The steps sent with a report: each a step of its playbook, once, at a recent time."""
    seen: set[int] = set()
    for i, step in enumerate(steps):
        check_index(step.index, handling_count, f"steps.{i}.index")
        if step.index in seen:
            raise invalid(f"steps.{i}.index", Msg("step {index} is given twice.", index=step.index))
        seen.add(step.index)
        check_recent(step.checked_at, f"steps.{i}.checked_at", now)


# --- writes -------------------------------------------------------------------


def _same_time(a: datetime, b: datetime) -> bool:
    return abs(a - b) < timedelta(milliseconds=1)


def _stale(found: ReportStep, checked_at: datetime) -> bool:
    """A tick that an untick since has taken back: a resend, not a new tick."""
    return found.unchecked_at is not None and checked_at <= found.unchecked_at


async def merge_steps(report: Report, steps: list[StepIn], user: User) -> bool:
    """Add the steps not yet recorded, and tick again those unticked before
    these ticks; 409 if a step is ticked at another time.

    Every conflict is found before anything is written, so a 409 stores nothing.
    """
    existing = {s.step_index: s for s in await ReportStep.filter(report_id=report.id)}
    new, again = [], []
    for step in steps:
        found = existing.get(step.index)
        if found is None:
            new.append(step)
        elif _same_time(found.checked_at, step.checked_at) or _stale(found, step.checked_at):
            continue
        elif not found.ticked:
            again.append((found, step))
        else:
            raise ApiError(
                409,
                "conflict",
                Msg(
                    "Step {index} was already ticked at {at}.",
                    index=step.index,
                    at=iso(found.checked_at),
                ),
            )
    if not new and not again:
        return False
    require_open(report)
    try:
        async with in_transaction():
            for found, step in again:
                # Only if still unticked: a concurrent re-tick has the same effect.
                await ReportStep.filter(id=found.id, checked_at=found.checked_at).update(
                    checked_at=step.checked_at, checked_by_id=user.id
                )
                await Event.create(
                    report_id=report.id,
                    actor_id=user.id,
                    kind="step",
                    data={"index": step.index, "checked_at": iso(step.checked_at), "again": True},
                )
            for step in new:
                await ReportStep.create(
                    report_id=report.id,
                    step_index=step.index,
                    checked_at=step.checked_at,
                    checked_by_id=user.id,
                )
                await Event.create(
                    report_id=report.id,
                    actor_id=user.id,
                    kind="step",
                    data={"index": step.index, "checked_at": iso(step.checked_at)},
                )
    except IntegrityError:
        # A concurrent resend recorded the same steps first: check it agrees.
        return await merge_steps(report, steps, user)
    return True


async def tick_step(
    ctx: Context, user: User, report_id: str, index: int, body: StepTickIn
) -> Written[ReportOut]:
    """Record one handling step ticked after the report was sent, by its
    reporter, until the incident is closed (a resend after that is still 200)."""
    report = await report_for(user, parse_report_id(report_id))
    require_reporter(user, report)
    incident = ctx.library.of_report(report)
    check_index(index, len(incident.handling) if incident else 0, "index")
    check_recent(body.checked_at, "checked_at", ctx.clock())
    step = [StepIn(index=index, checked_at=body.checked_at)]
    created = await merge_steps(report, step, user)
    if created:
        ctx.committed()
    return Written(await report_out(report, ctx), created=created)


async def untick_step(
    ctx: Context, user: User, report_id: str, index: int, query: StepUntickQuery
) -> ReportOut:
    """Take back a step ticked by mistake, by its reporter, until the incident
    is closed. The tick is kept as evidence, the untick recorded beside it and
    in the timeline. Idempotent: a step not ticked (never, or unticked
    already), or ticked again after ``at``, is answered unchanged (200)."""
    report = await report_for(user, parse_report_id(report_id))
    require_reporter(user, report)
    incident = ctx.library.of_report(report)
    check_index(index, len(incident.handling) if incident else 0, "index")
    check_recent(query.at, "at", ctx.clock())
    found = await ReportStep.get_or_none(report_id=report.id, step_index=index)
    if found is None or not found.ticked or found.checked_at > query.at:
        return await report_out(report, ctx)
    require_open(report)
    async with in_transaction():
        # Only the tick this untick saw: a re-tick meanwhile stands.
        changed = await ReportStep.filter(id=found.id, checked_at=found.checked_at).update(
            unchecked_at=query.at, unchecked_by_id=user.id
        )
        if changed:
            await Event.create(
                report_id=report.id,
                actor_id=user.id,
                kind="step_unchecked",
                data={
                    "index": index,
                    "unchecked_at": iso(query.at),
                    "checked_at": iso(found.checked_at),
                },
            )
    if changed:
        ctx.committed()
    return await report_out(report, ctx)
