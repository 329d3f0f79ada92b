"""Who is told what: a delivery row per device, in the database before any send.

The rows are the durable outbox of every push; :mod:`server.push.worker`
sends them. Queued inside the caller's transaction, an alert exists exactly
when the change it announces does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from server.models import PushDelivery, PushSubscription, Report, Role, Severity, Site, User
from server.push.messages import TTL, URGENCY, Message, payload, test_message


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
