"""The numbers behind the dashboard: incidents per month by type and by site,
the median minutes to acknowledge and to close, the open and overdue 改善 actions.

Only the reports the user may see count (:func:`server.access.reports_visible_to`). A report
belongs to the month it was received in, in the sites' time zone
(``settings.timezone``), and its times to acknowledge and to close count in
that month too, so a month's figures describe that month's incidents. The
actions are as they stand today, whatever the months asked for.

Each figure is one bounded query that fetches only the columns it needs (the
reports of the months asked for, the actions not yet verified); medians need
every value, which neither SQLite nor Tortoise computes, so they are taken here.
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from server.access import reports_visible_to
from server.context import Context
from server.models import ActionStatus, CorrectiveAction, Report, Site, User

DEFAULT_MONTHS = 12
MAX_MONTHS = 36
# The overdue actions listed by name; the count covers all of them.
OVERDUE_LISTED = 20


@dataclass(frozen=True)
class Counts:
    """Reports per month for each key (an incident type or a site id), the
    keys most reported first."""

    rows: dict[str, list[int]]

    def totals(self) -> list[int]:
        """All keys together, per month."""
        return [sum(column) for column in zip(*self.rows.values(), strict=True)]


@dataclass(frozen=True)
class Medians:
    """The median minutes of each month (None with nothing to take it from),
    and how many reports each was taken from."""

    minutes: list[float | None]
    counts: list[int]


@dataclass(frozen=True)
class ActionTally:
    """A site's 改善 actions not yet verified: still open, done and waiting
    for a re-check, and overdue (open past the due day)."""

    site: str
    open: int = 0
    done: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class Dashboard:
    months: list[date]  # the first day of each month, oldest first
    reports: int
    by_type: Counts
    by_site: Counts  # keyed by site name
    to_acknowledge: Medians
    to_close: Medians
    actions: list[ActionTally]  # one per site with any, by name
    overdue: list[CorrectiveAction]  # the most overdue first, with report and owner

    @property
    def open_actions(self) -> int:
        return sum(t.open + t.done for t in self.actions)

    @property
    def overdue_actions(self) -> int:
        return sum(t.overdue for t in self.actions)


def month_starts(today: date, months: int) -> list[date]:
    """The first days of the ``months`` months that end with ``today``'s, oldest first."""
    index = today.year * 12 + today.month - 1
    return [date(i // 12, i % 12 + 1, 1) for i in range(index - months + 1, index + 1)]


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _minutes(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    # A clock set wrong could put an end before its start: count it as at once.
    return max((end - start).total_seconds() / 60, 0.0)


def _medians(values: list[list[float]]) -> Medians:
    return Medians(
        minutes=[statistics.median(v) if v else None for v in values],
        counts=[len(v) for v in values],
    )


def _counts(per_key: dict[str, Counter[int]], size: int) -> Counts:
    totals = {key: sum(c.values()) for key, c in per_key.items()}
    order = sorted(per_key, key=lambda key: (-totals[key], key))
    return Counts({key: [per_key[key][i] for i in range(size)] for key in order})


async def build(ctx: Context, user: User, months: int = DEFAULT_MONTHS) -> Dashboard:
    """The dashboard of the ``months`` months up to today, for what ``user`` may see."""
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be 1 to {MAX_MONTHS}")
    tz = ZoneInfo(ctx.settings.timezone)
    today = ctx.today()
    starts = month_starts(today, months)
    index = {(d.year, d.month): i for i, d in enumerate(starts)}

    def utc(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)

    visible = await reports_visible_to(user)
    rows = cast(
        "list[tuple[datetime, str, int, datetime | None, datetime | None]]",
        await visible.filter(
            received_at__gte=utc(starts[0]), received_at__lt=utc(_next_month(starts[-1]))
        ).values_list("received_at", "incident_type", "site_id", "acknowledged_at", "closed_at"),
    )
    by_type: dict[str, Counter[int]] = defaultdict(Counter)
    by_site_id: dict[int, Counter[int]] = defaultdict(Counter)
    to_ack: list[list[float]] = [[] for _ in starts]
    to_close: list[list[float]] = [[] for _ in starts]
    for received, incident_type, site_id, acknowledged, closed in rows:
        local = received.astimezone(tz)
        i = index[(local.year, local.month)]
        by_type[incident_type][i] += 1
        by_site_id[site_id][i] += 1
        if (minutes := _minutes(received, acknowledged)) is not None:
            to_ack[i].append(minutes)
        if (minutes := _minutes(received, closed)) is not None:
            to_close[i].append(minutes)

    actions, overdue = await _actions(visible, today)
    names = await _site_names({*by_site_id, *actions})
    by_site: dict[str, Counter[int]] = defaultdict(Counter)
    for site_id, counter in by_site_id.items():
        by_site[names[site_id]].update(counter)
    return Dashboard(
        months=starts,
        reports=len(rows),
        by_type=_counts(by_type, len(starts)),
        by_site=_counts(by_site, len(starts)),
        to_acknowledge=_medians(to_ack),
        to_close=_medians(to_close),
        actions=sorted(
            (ActionTally(site=names[site_id], **tally) for site_id, tally in actions.items()),
            key=lambda t: t.site,
        ),
        overdue=overdue,
    )


async def _site_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    found = cast("list[tuple[int, str]]", await Site.filter(id__in=ids).values_list("id", "name"))
    return dict(found)


async def _actions(
    visible: QuerySet[Report], today: date
) -> tuple[dict[int, dict[str, int]], list[CorrectiveAction]]:
    """The actions not yet verified of the visible reports, counted per site;
    and the most overdue of them, read whole."""
    rows = cast(
        "list[tuple[uuid.UUID, ActionStatus, date | None, int]]",
        await CorrectiveAction.filter(
            status__in=[ActionStatus.OPEN, ActionStatus.DONE],
            report_id__in=Subquery(visible.values("id")),
        ).values_list("id", "status", "due_date", "report__site_id"),
    )
    tallies: dict[int, dict[str, int]] = defaultdict(lambda: {"open": 0, "done": 0, "overdue": 0})
    late: list[tuple[date, uuid.UUID]] = []
    for action_id, status, due, site_id in rows:
        tally = tallies[site_id]
        tally["done" if status == ActionStatus.DONE else "open"] += 1
        # One meaning of overdue everywhere: the model's.
        if CorrectiveAction(status=status, due_date=due).is_overdue(today):
            tally["overdue"] += 1
            late.append((cast(date, due), action_id))
    late.sort()
    ids = [action_id for _, action_id in late[:OVERDUE_LISTED]]
    listed = (
        await CorrectiveAction.filter(id__in=ids).prefetch_related("owner", "report__site")
        if ids
        else []
    )
    order = {action_id: n for n, action_id in enumerate(ids)}
    return dict(tallies), sorted(listed, key=lambda a: order[a.id])
