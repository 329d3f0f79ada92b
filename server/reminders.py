"""Reminders: the owner of an overdue corrective action gets one push a day.

Overdue is :meth:`CorrectiveAction.is_overdue`: still open after its due day
in the sites' time zone. Every server runs the worker; which one reminds is
decided by the database: one conditional UPDATE sets ``reminded_on`` to today
only where it is still empty or an earlier day (and the action still
overdue), and only the server whose UPDATE changed the row goes on. The
stamp, the ``overdue`` event on the report and the queued push are one
transaction, so a reminder is never half sent (a crash before the commit
leaves it for the next pass) nor sent twice; an action marked done
meanwhile makes the UPDATE match nothing.
"""

from __future__ import annotations

import logging
from datetime import date
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from server.alerts.queue import notify_action, tell_channels
from server.context import Context
from server.loop import Loop
from server.models import ActionStatus, CorrectiveAction, Event, Report, ReportStatus

log = logging.getLogger("onsite.reminders")


def _due(today: date) -> Q:
    """Overdue on ``today`` and not yet reminded today (what is_overdue means, in SQL)."""
    return Q(
        Q(reminded_on=None) | Q(reminded_on__lt=today),
        status=ActionStatus.OPEN,
        due_date__lt=today,
    )


class Reminders:
    """The worker: reminds the owners of overdue actions every ``interval``
    seconds, from ``from_hour`` o'clock where the sites are, so that the day's
    reminder does not wake anyone just after midnight."""

    def __init__(
        self, ctx: Context, *, interval: float = 600.0, from_hour: int = 8, batch: int = 500
    ) -> None:
        self.ctx = ctx
        self.interval = interval
        self.from_hour = from_hour
        self.batch = batch
        self.loop = Loop("reminders", self._look)

    async def start(self) -> None:
        # Actions that fell overdue while no server ran are reminded at once.
        self.loop.start()

    @property
    def alive(self) -> bool:
        """Its loop runs (for /healthz): started and not ended by an error."""
        return self.loop.alive

    async def stop(self) -> None:
        await self.loop.stop()

    async def run_once(self) -> int:
        """Remind the owner of every action overdue today and not reminded yet
        today; return how many reminders this server sent."""
        local = self.ctx.clock().astimezone(ZoneInfo(self.ctx.settings.timezone))
        if local.hour < self.from_hour:
            return 0
        today = self.ctx.today()
        sent = 0
        while True:
            due = await (
                # A closed incident (an admin waived its review) reminds no one.
                CorrectiveAction.filter(_due(today), owner__is_active=True)
                .exclude(report__status=ReportStatus.CLOSED)
                .order_by("due_date", "id")
                .limit(self.batch)
                .select_related("owner", "report", "report__site")
            )
            for action in due:
                sent += await self.remind(action, today)
            # Each one claimed, here or elsewhere, leaves the query: the next
            # batch is new ones.
            if len(due) < self.batch:
                return sent

    async def remind(self, action: CorrectiveAction, today: date) -> bool:
        """Claim today's reminder of ``action`` and, if this server's claim
        holds, record it on the report and push it to the owner."""
        report: Report = action.report  # fetched with the action
        owner = action.owner
        assert owner is not None and action.due_date is not None  # as selected
        async with in_transaction():
            claimed = await CorrectiveAction.filter(_due(today), id=action.id).update(
                reminded_on=today
            )
            if claimed != 1:
                return False  # done meanwhile, or another server has it
            await Event.create(
                report_id=report.id,
                actor=None,
                kind="overdue",
                data={"action": str(action.id), "due": action.due_date.isoformat()},
            )
            queued = await notify_action(
                report, report.site, owner, "overdue", self.ctx.library.titles(report.incident_type)
            )
            queued += await tell_channels(self.ctx, report, report.site, "overdue", owner=owner)
        log.info(
            "reminded %s of overdue action %s (due %s): %d pushes",
            owner.username,
            action.id,
            action.due_date,
            queued,
        )
        self.ctx.committed(queued)
        return True

    async def _look(self) -> float:
        """One pass; then the interval until the next."""
        try:
            await self.run_once()
        except Exception:  # the worker must outlive a bad moment
            log.exception("reminding overdue actions failed")
        return self.interval
