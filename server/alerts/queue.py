"""Who is told what: a delivery row per device or group robot, in the database
before any send.

The rows are the durable outbox of every push; :mod:`server.alerts.deliverer`
sends them. Queued inside the caller's transaction, an alert exists exactly
when the change it announces does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from server.alerts import robots
from server.alerts.texts import TTL, URGENCY, Message, payload, test_message
from server.models import (
    AlertChannel,
    PushDelivery,
    PushSubscription,
    Report,
    ReportStep,
    Role,
    Severity,
    Site,
    User,
)

if TYPE_CHECKING:
    from server.context import Context

# A channel told of "high" hears of "critical" too.
RANK = {s: n for n, s in enumerate(Severity)}  # the enum runs from low to critical
# A channel message's topic: "test" for an admin's test message (sent even to
# an inactive channel), else the report's.
TEST_TOPIC = "test"


async def notify_new_report(report: Report, site: Site, title: dict[str, str]) -> int:
    """Tell the supervisors of ``site`` about a new report. Returns the rows queued."""
    supervisors = await User.filter(role=Role.SUPERVISOR, is_active=True, sites__id=site.id)
    return await _about_report(report, "new", supervisors, title, site.name)


async def notify_assignment(
    report: Report, site: Site, technician: User, title: dict[str, str]
) -> int:
    """Tell a technician that ``report`` is theirs to repair."""
    return await _about_report(report, "assigned", [technician], title, site.name)


async def notify_reply(report: Report, site: Site, title: dict[str, str]) -> int:
    """Tell the guard who reported that the approved reply wording is out."""
    reporter = await User.filter(id=report.reporter_id, is_active=True)
    return await _about_report(report, "reply", reporter, title, site.name)


async def notify_repaired(report: Report, site: Site, title: dict[str, str]) -> int:
    """Tell the supervisors of ``site`` that the repair is done."""
    supervisors = await User.filter(role=Role.SUPERVISOR, is_active=True, sites__id=site.id)
    return await _about_report(report, "repaired", supervisors, title, site.name)


async def notify_escalation(report: Report, site: Site, title: dict[str, str]) -> int:
    """A report nobody acknowledged in time: its site's supervisors again, and
    the admins (those of the site, and those who belong to no site: every site's)."""
    supervisors = await User.filter(role=Role.SUPERVISOR, is_active=True, sites__id=site.id)
    admins = await User.filter(role=Role.ADMIN, is_active=True).prefetch_related("sites")
    ours = [a for a in admins if (ids := {s.id for s in a.sites}) == set() or site.id in ids]
    return await _about_report(report, "escalated", [*supervisors, *ours], title, site.name)


async def notify_action(
    report: Report, site: Site, owner: User, kind: str, title: dict[str, str]
) -> int:
    """Tell the owner of a corrective action: it is theirs (``action``), its
    re-check failed (``check_failed``), or it is overdue (``overdue``)."""
    return await _about_report(report, kind, [owner], title, site.name)


async def enqueue_test(user: User) -> int:
    """A test notification to every device of ``user``, in each device's language."""
    subs = await PushSubscription.filter(user_id=user.id)
    return await _queue(
        subs,
        lambda sub: test_message(sub.language),
        report=None,
        urgency="normal",
        ttl=TTL[Severity.LOW],
        topic="test",
    )


async def _about_report(
    report: Report, kind: str, recipients: list[User], title: dict[str, str], site_name: str
) -> int:
    subs = await PushSubscription.filter(user_id__in=[u.id for u in recipients])
    return await _queue(
        subs,
        lambda sub: payload(kind, report, title, site_name, sub.language),
        report=report,
        urgency=URGENCY[report.severity],
        ttl=TTL[report.severity],
        # One Topic per report: a newer alert replaces a stale one that is
        # still waiting at the push service.
        topic=report.id.hex[:32],
    )


async def _queue(
    subs: list[PushSubscription],
    message: Callable[[PushSubscription], Message],
    *,
    report: Report | None,
    urgency: str,
    ttl: int,
    topic: str,
) -> int:
    now = datetime.now(UTC)
    rows = [
        PushDelivery(
            subscription=sub,
            report=report,
            endpoint=sub.endpoint,
            payload=message(sub),
            urgency=urgency,
            ttl_seconds=ttl,
            topic=topic,
            next_attempt_at=now,
        )
        for sub in subs
    ]
    if rows:
        await PushDelivery.bulk_create(rows)
    return len(rows)


# --- group robots ---------------------------------------------------------------


async def tell_channels(
    ctx: Context,
    report: Report,
    site: Site,
    kind: str,
    *,
    owner: User | None = None,
    reporter: User | None = None,
) -> int:
    """Queue a message to each active channel of ``site`` that is told of
    ``kind`` (``new`` by its severity; ``escalated``, ``repaired``,
    ``overdue`` by its events), in the channel's language."""
    found = await AlertChannel.filter(site_id=site.id, active=True)
    if kind == "new":
        told = [
            c
            for c in found
            if c.min_severity is not None and RANK[report.severity] >= RANK[c.min_severity]
        ]
    else:
        told = [c for c in found if kind in (c.events or [])]
    if not told:
        return 0
    facts = await _facts(ctx, report, site, kind, owner, reporter)
    now = datetime.now(UTC)
    rows = [
        _row(
            channel,
            robots.report_message(channel.kind, channel.language, facts, ctx.settings.timezone),
            report=report,
            topic=report.id.hex[:32],
            now=now,
        )
        for channel in told
    ]
    await PushDelivery.bulk_create(rows)
    return len(rows)


async def enqueue_channel_test(channel: AlertChannel, ctx: Context) -> int:
    """A test message to ``channel``, active or not, in its language."""
    site = await Site.get(id=channel.site_id)
    message = robots.test_message(
        channel.kind, channel.language, channel.name, site.name, _link(ctx, "/")
    )
    await _row(channel, message, report=None, topic=TEST_TOPIC, now=datetime.now(UTC)).save()
    return 1


def _row(
    channel: AlertChannel, message: Message, *, report: Report | None, topic: str, now: datetime
) -> PushDelivery:
    # The webhook is read from the channel when the message is sent (an admin
    # may fix it meanwhile); the row names the robot, never its key.
    return PushDelivery(
        channel_id=channel.id,
        report=report,
        endpoint=PushDelivery.robot_endpoint(channel),
        payload=message,
        urgency=URGENCY[report.severity] if report else "normal",
        ttl_seconds=TTL[report.severity] if report else TTL[Severity.LOW],
        topic=topic,
        next_attempt_at=now,
    )


def _link(ctx: Context, path: str) -> str:
    """``path`` in the app, absolute when the app knows its address."""
    return f"{ctx.settings.public_url}{path}"


async def _facts(
    ctx: Context,
    report: Report,
    site: Site,
    kind: str,
    owner: User | None,
    reporter: User | None,
) -> robots.Facts:
    incident = ctx.library.of_report(report)
    ticked = await ReportStep.filter(report_id=report.id).order_by("step_index")
    steps: list[dict[str, str]] = []
    if incident is not None:
        handling = incident.handling
        steps = [
            handling[s.step_index].text.as_dict()
            for s in ticked
            if s.step_index < len(handling) and s.ticked
        ]
    if reporter is None:
        reporter = await User.get_or_none(id=report.reporter_id)
    return robots.Facts(
        kind=kind,
        title=ctx.library.titles(report.incident_type),
        severity=report.severity,
        site=site.name,
        location=report.location_text or "",
        reporter=_name(reporter),
        occurred_at=report.occurred_at,
        steps=tuple(steps),
        url=_link(ctx, f"/reports/{report.id}"),
        owner=_name(owner) if owner else "",
    )


def _name(user: User | None) -> str:
    if user is None:
        return "—"
    return user.display_name or user.username
