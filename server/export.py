"""The CSV export of reports, for those who open it in Excel.

The same filters and the same visibility as the report list (one function,
:func:`server.report_list.filter_reports`), one row per incident, written in
batches as the answer streams, so a year of reports is never in memory at
once. UTF-8 with a byte order mark, or Excel takes the Chinese for the
Windows code page; headers, incident types, severities and statuses in the
reader's language; times in the sites' time zone.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from server.context import Context
from server.models import (
    ActionStatus,
    CorrectiveAction,
    Report,
    ReportStatus,
    ReportStep,
    Severity,
    User,
)
from server.playbooks import Text
from server.report_list import ReportFilter, filter_reports

BOM = "\ufeff"
BATCH = 500
TIME_FORMAT = "%Y-%m-%d %H:%M"
# A cell Excel would run as a formula (CSV injection): shown as text instead.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportQuery(ReportFilter):
    """Filters of the export (those of the report list); times are when the
    server received the report."""

    lang: Literal["zh-CN", "en"] | None = Field(
        default=None, description="language of the headers and labels; default: the user's"
    )


# The words the pages use for each severity and status.
SEVERITY = {
    Severity.CRITICAL: Text("危急", "Critical"),
    Severity.HIGH: Text("高", "High"),
    Severity.MEDIUM: Text("中", "Medium"),
    Severity.LOW: Text("低", "Low"),
}
STATUS = {
    ReportStatus.NEW: Text("新上报", "New"),
    ReportStatus.ACKNOWLEDGED: Text("已确认", "Acknowledged"),
    ReportStatus.ASSIGNED: Text("已派单", "Assigned"),
    ReportStatus.REPAIRED: Text("已维修", "Repaired"),
    ReportStatus.CLOSED: Text("已关闭", "Closed"),
}


@dataclass(frozen=True)
class Counts:
    """A report's corrective actions not yet verified, and those of them overdue."""

    open: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class Row:
    """What one report gives the sheet, before it is put into words."""

    report: Report
    actions: Counts
    lang: str
    ctx: Context
    # The indexes of the handling steps ticked (and not taken back).
    ticked: tuple[int, ...] = ()

    def time(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(ZoneInfo(self.ctx.settings.timezone)).strftime(TIME_FORMAT)

    def minutes_to(self, value: datetime | None) -> str:
        """Whole minutes from receipt to ``value``; empty while not reached."""
        if value is None:
            return ""
        return str(max(0, int((value - self.report.received_at).total_seconds() // 60)))

    def incident(self) -> str:
        incident = self.ctx.library.incident(self.report.incident_type)
        # A playbook removed since: its id is all there is.
        return incident.title.get(self.lang) if incident else self.report.incident_type

    def version(self) -> str:
        """The playbook version the report followed, as its page names it (v3)."""
        published = self.ctx.library.at(self.report.playbook_version)
        return f"v{published.number}" if published else ""

    def steps(self) -> str:
        """The steps ticked, in the words of the version the report followed."""
        followed = self.ctx.library.of_report(self.report)
        handling = followed.handling if followed else ()
        return text(
            "; ".join(handling[i].text.get(self.lang) for i in self.ticked if i < len(handling))
        )


# The columns in order: the header in each language, and the cell of a row.
COLUMNS: list[tuple[Text, Callable[[Row], str | int]]] = [
    (Text("编号", "ID"), lambda r: str(r.report.id)),
    (Text("小区", "Site"), lambda r: text(r.report.site.name)),
    (Text("事件类型", "Incident type"), Row.incident),
    (Text("严重程度", "Severity"), lambda r: SEVERITY[r.report.severity].get(r.lang)),
    (Text("状态", "Status"), lambda r: STATUS[r.report.status].get(r.lang)),
    (
        Text("上报人", "Reporter"),
        lambda r: text(r.report.reporter.display_name or r.report.reporter.username),
    ),
    (Text("发生时间", "Occurred at"), lambda r: r.time(r.report.occurred_at)),
    (Text("接报时间", "Received at"), lambda r: r.time(r.report.received_at)),
    (Text("确认时间", "Acknowledged at"), lambda r: r.time(r.report.acknowledged_at)),
    (Text("关闭时间", "Closed at"), lambda r: r.time(r.report.closed_at)),
    (
        Text("接报至确认（分钟）", "Minutes to acknowledge"),
        lambda r: r.minutes_to(r.report.acknowledged_at),
    ),
    (Text("接报至关闭（分钟）", "Minutes to close"), lambda r: r.minutes_to(r.report.closed_at)),
    (Text("预案版本", "Playbook version"), Row.version),
    (Text("已完成步骤", "Steps done"), Row.steps),
    (Text("未完成整改", "Open actions"), lambda r: r.actions.open),
    (Text("逾期整改", "Overdue actions"), lambda r: r.actions.overdue),
]


def text(value: str) -> str:
    """Free text as Excel shows it, never run as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def filename(today: date) -> str:
    return f"onsite-reports-{today:%Y%m%d}.csv"


async def export_reports(
    ctx: Context, user: User, query: ExportQuery, lang: str
) -> AsyncIterator[str]:
    """The reports ``user`` may see that match ``query``, as CSV text in chunks.

    The filters are checked now (403 for a site not the user's, 422 for an
    unknown one), before anything is sent; the rows are read as the answer
    is written, a batch at a time."""
    reports = await filter_reports(user, query)
    return _chunks(ctx, reports, query.lang or lang)


async def _chunks(ctx: Context, reports: QuerySet[Report], lang: str) -> AsyncIterator[str]:
    yield BOM + _csv([[header.get(lang) for header, _ in COLUMNS]])
    today = ctx.today()
    await ctx.library.fresh()
    async for batch in _batches(reports):
        ids = [r.id for r in batch]
        counts = await _action_counts(ids, today)
        ticked = await _ticked(ids)
        rows = [
            Row(r, counts.get(r.id, Counts()), lang, ctx, tuple(ticked.get(r.id, ())))
            for r in batch
        ]
        yield _csv([[cell(row) for _, cell in COLUMNS] for row in rows])


async def _batches(reports: QuerySet[Report]) -> AsyncIterator[list[Report]]:
    """Newest first, as the list shows them, ``BATCH`` at a time (keyset
    paging: each batch starts where the last ended, however many there are)."""
    last: Report | None = None
    while True:
        qs = reports
        if last is not None:
            at = last.received_at
            qs = qs.filter(Q(received_at__lt=at) | Q(received_at=at, id__lt=last.id))
        batch = (
            await qs.order_by("-received_at", "-id").limit(BATCH).select_related("site", "reporter")
        )
        if batch:
            yield list(batch)
        if len(batch) < BATCH:
            return
        last = batch[-1]


async def _action_counts(report_ids: list[uuid.UUID], today: date) -> dict[uuid.UUID, Counts]:
    """Per report: its actions open or done but not yet verified, and those overdue."""
    rows = await CorrectiveAction.filter(
        report_id__in=report_ids, status__in=[ActionStatus.OPEN, ActionStatus.DONE]
    ).values_list("report_id", "status", "due_date")
    open_, overdue = Counter[uuid.UUID](), Counter[uuid.UUID]()
    for rid, status, due_date in rows:
        open_[rid] += 1
        # The one meaning of overdue, asked of the row's own fields.
        overdue[rid] += CorrectiveAction(status=status, due_date=due_date).is_overdue(today)
    return {rid: Counts(open_[rid], overdue[rid]) for rid in open_}


async def _ticked(report_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    """Per report: the indexes of its steps ticked and not taken back, in order."""
    rows = await ReportStep.filter(report_id__in=report_ids).order_by("step_index")
    out: dict[uuid.UUID, list[int]] = {}
    for step in rows:
        if step.ticked:
            out.setdefault(step.report_id, []).append(step.step_index)
    return out


def _csv(rows: list[list[str | int]]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)  # "\r\n" between rows, as Excel writes
    return buf.getvalue()
