"""Reminders: the owner of an overdue corrective action gets one push a day,
never for an action done, verified or not yet due, and never twice from two
servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.models import (
    ActionStatus,
    CorrectiveAction,
    Event,
    PushDelivery,
    PushSubscription,
    User,
)
from server.reminders import Reminders
from tests.conftest import CSRF
from tests.helpers.push import phone_of, push_kinds, settled
from tests.helpers.push_receiver import Receiver
from tests.helpers.reports import action, new_report

DAY = 24 * 3600


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


@pytest.fixture
async def reminders(app) -> Reminders:
    """The app's worker, stopped in the background so that the test says when it runs."""
    worker: Reminders = app.state.reminders
    await worker.stop()
    return worker


@pytest.fixture
async def rid(app, world, as_user, clock) -> str:
    """A report, and the clock at nine in the morning where the sites are."""
    report = await new_report(app, await as_user("guard"))
    at(app, clock, hour=9)
    return report


def at(app, clock, hour: int, minute: int = 0) -> None:
    """Move the clock on to the next ``hour``:``minute`` in the sites' time zone."""
    now = clock().astimezone(ZoneInfo(app.state.settings.timezone))
    then = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if then <= now:
        then += timedelta(days=1)
    clock.advance((then - now).total_seconds())


def today(app) -> date:
    return app.state.context.today()


def counted(remind, tried: list[bool]):
    """``remind``, noting each outcome in ``tried``."""

    async def wrapper(*args):
        tried.append(await remind(*args))
        return tried[-1]

    return wrapper


async def overdue_events(rid: str) -> list[Event]:
    return list(await Event.filter(report_id=rid, kind="overdue").order_by("id"))


async def test_an_action_due_yesterday_reminds_its_owner_once_a_day(
    app, world, as_user, receiver, clock, reminders, rid
):
    phone = await phone_of(app, receiver, "tech")
    yesterday = today(app) - timedelta(days=1)
    aid = await action(as_user, rid, yesterday)
    await settled(app)
    assert push_kinds(phone) == ["action"]  # made: the owner is told it is theirs

    assert await reminders.run_once() == 1
    await settled(app)
    assert push_kinds(phone) == ["action", "overdue"]
    push = phone.received[-1]["payload"]
    assert push["title"] == "整改已逾期：电梯困人事件"
    assert push["report_id"] == rid
    [event] = await overdue_events(rid)
    assert event.actor_id is None
    assert event.data == {"action": aid, "due": yesterday.isoformat()}
    assert (await CorrectiveAction.get(id=aid)).reminded_on == today(app)

    clock.advance(8 * 3600)  # later the same day: nothing more
    assert await reminders.run_once() == 0
    await settled(app)
    assert push_kinds(phone) == ["action", "overdue"]

    clock.advance(DAY)  # the next day: one more
    assert await reminders.run_once() == 1
    assert await reminders.run_once() == 0
    await settled(app)
    assert push_kinds(phone) == ["action", "overdue", "overdue"]
    assert len(await overdue_events(rid)) == 2


async def test_a_done_verified_or_not_yet_due_action_is_never_reminded(
    app, world, as_user, clock, reminders, rid
):
    day = today(app)
    await action(as_user, rid, day - timedelta(days=3), ActionStatus.DONE)
    await action(as_user, rid, day - timedelta(days=3), ActionStatus.VERIFIED)
    due_today = await action(as_user, rid, day)
    await action(as_user, rid, day + timedelta(days=1))

    assert await reminders.run_once() == 0
    assert await overdue_events(rid) == []

    clock.advance(DAY)  # only the one due yesterday is overdue now
    assert await reminders.run_once() == 1
    assert [e.data["action"] for e in await overdue_events(rid)] == [due_today]


async def test_an_action_without_an_owner_or_whose_owner_left_is_not_reminded(
    app, world, as_user, reminders, rid
):
    yesterday = today(app) - timedelta(days=1)
    await action(as_user, rid, yesterday)
    await User.filter(id=world.technician.id).update(is_active=False)
    # No owner at all: the API always names one, so the row is made directly.
    await CorrectiveAction.create(report_id=rid, description="无人负责", due_date=yesterday)
    assert await reminders.run_once() == 0
    assert await overdue_events(rid) == []


async def test_an_action_done_after_it_was_found_is_not_reminded(
    app, world, as_user, reminders, rid
):
    aid = await action(as_user, rid, today(app) - timedelta(days=1))
    found = await CorrectiveAction.get(id=aid).select_related("owner", "report", "report__site")
    done = await (await as_user("tech")).put(
        f"/api/reports/{rid}/actions/{aid}/done", json={}, headers=CSRF
    )
    assert done.status_code == 201, done.text
    assert await reminders.remind(found, today(app)) is False
    assert await overdue_events(rid) == []


async def test_no_reminder_is_sent_before_eight_in_the_morning(
    app, world, as_user, clock, reminders, rid
):
    await action(as_user, rid, today(app) - timedelta(days=1))
    at(app, clock, hour=7, minute=59)
    assert await reminders.run_once() == 0
    clock.advance(60)
    assert await reminders.run_once() == 1


async def test_two_servers_looking_at_the_same_moment_send_one_reminder(
    app, world, as_user, reminders, rid
):
    await action(as_user, rid, today(app) - timedelta(days=1))
    # A device subscribed after the action was made: only reminders reach it.
    # It is never called: the queued rows are counted.
    device = "https://push.example/tech"
    await PushSubscription.create(user=world.technician, endpoint=device, p256dh="x", auth="y")
    # Each finds the action before either claims it; the database decides.
    other = Reminders(app.state.context)
    tried = []
    for worker in (reminders, other):
        worker.remind = counted(worker.remind, tried)
    done = await asyncio.gather(reminders.run_once(), other.run_once())
    assert len(tried) == 2, "both found the action"
    assert sorted(done) == [0, 1]
    assert len(await overdue_events(rid)) == 1
    assert await PushDelivery.filter(endpoint=device).count() == 1


async def test_more_overdue_actions_than_a_batch_are_all_reminded_in_one_pass(
    app, world, as_user, reminders, rid
):
    for days in range(1, 6):
        await action(as_user, rid, today(app) - timedelta(days=days))
    small = Reminders(app.state.context, batch=2)
    assert await small.run_once() == 5
    assert len(await overdue_events(rid)) == 5


async def test_the_worker_reminds_by_itself(app, world, as_user, reminders, rid):
    await action(as_user, rid, today(app) - timedelta(days=1))
    worker = Reminders(app.state.context, interval=0.05)
    await worker.start()
    try:
        deadline = time.monotonic() + 5
        while not await overdue_events(rid):
            assert time.monotonic() < deadline, "not reminded within 5 s"
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert len(await overdue_events(rid)) == 1


async def test_an_open_action_of_an_incident_closed_by_an_admin_reminds_no_one(
    app, world, as_user, reminders, rid
):
    await action(as_user, rid, today(app) - timedelta(days=1))
    admin = await as_user("admin")
    await admin.put(f"/api/reports/{rid}/acknowledgement", headers=CSRF)
    closed = await admin.put(
        f"/api/reports/{rid}/closure",
        json={"note": "住户撤诉", "waive": "无需整改"},
        headers=CSRF,
    )
    assert closed.status_code == 201, closed.text
    assert await reminders.run_once() == 0
    assert await overdue_events(rid) == []
