"""Escalation: a new report nobody acknowledged in time alerts the site's admins,
and its supervisors again, once.

The deadline is minutes per severity (``settings.escalation_minutes``).
Every server runs the worker; which one escalates a report is decided by
the database: one conditional UPDATE stamps ``escalated_at`` only where it
is still empty and the report still new, and only the server whose UPDATE
changed the row goes on. The stamp, the ``escalated`` event and the queued
pushes are one transaction, so an escalation is never half done (a crash
before the commit leaves the report for the next pass) nor done twice; and
an acknowledgement committed first makes the UPDATE match nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from server.alerts.queue import notify_escalation, tell_channels
from server.context import Context
from server.loop import Loop
from server.models import Event, Report, ReportStatus, Site

log = logging.getLogger("onsite.escalation")


class Escalator:
    """The worker: escalates due reports every ``interval`` seconds, and exactly
    at the next deadline it knows of (:meth:`kick` makes it look again now)."""

    def __init__(self, ctx: Context, *, interval: float = 5.0, batch: int = 500) -> None:
        self.ctx = ctx
        self.interval = interval
        self.batch = batch
        self.next_due: datetime | None = None
        self.loop = Loop("escalator", self._look)

    async def start(self) -> None:
        # Reports that fell due while no server ran are escalated at once.
        self.loop.start()

    @property
    def alive(self) -> bool:
        """Its loop runs (for /healthz): started and not ended by an error."""
        return self.loop.alive

    async def stop(self) -> None:
        await self.loop.stop()

    def kick(self) -> None:
        """Look again now: a report was made, so there may be a nearer deadline."""
        self.loop.kick()

    def deadline(self, report: Report) -> timedelta:
        return timedelta(minutes=self.ctx.settings.escalation_minutes[report.severity.value])

    async def run_once(self) -> int:
        """Escalate every report due now; return how many this server escalated."""
        self.next_due = None
        now = self.ctx.clock()
        waiting = await (
            Report.filter(status=ReportStatus.NEW, escalated_at=None)
            .order_by("received_at")
            .limit(self.batch)
        )
        escalated, later = 0, []
        for report in waiting:
            due = report.received_at + self.deadline(report)
            if due <= now:
                escalated += await self.escalate(report, now)
            else:
                later.append(due)
        self.next_due = min(later, default=None)
        return escalated

    async def escalate(self, report: Report, now: datetime) -> bool:
        """Claim ``report`` and, if this server's claim holds, record and alert."""
        minutes = self.ctx.settings.escalation_minutes[report.severity.value]
        async with in_transaction():
            claimed = await Report.filter(
                id=report.id, status=ReportStatus.NEW, escalated_at=None
            ).update(escalated_at=now)
            if claimed != 1:
                return False  # acknowledged meanwhile, or another server has it
            await Event.create(
                report_id=report.id,
                actor=None,
                kind="escalated",
                data={"severity": report.severity.value, "deadline_minutes": minutes},
            )
            site = await Site.get(id=report.site_id)
            queued = await notify_escalation(
                report, site, self.ctx.library.titles(report.incident_type)
            )
            queued += await tell_channels(self.ctx, report, site, "escalated")
        log.info(
            "escalated report %s (%s, %g min): %d pushes",
            report.id,
            report.severity.value,
            minutes,
            queued,
        )
        self.ctx.committed(queued)
        return True

    async def _look(self) -> float:
        """One pass; then seconds until the next: the interval, or less to the
        next deadline known."""
        try:
            await self.run_once()
        except Exception:  # the worker must outlive a bad moment
            log.exception("escalating reports failed")
        wait = self.interval
        if self.next_due is not None:
            until_due = (self.next_due - self.ctx.clock()).total_seconds()
            wait = max(0.0, min(wait, until_due))
        return wait
