"""Corrective actions (改善) in lists: a person's own (我的整改), how many they
still have open, and how many of each listed report's are overdue.

The writes (create, done, re-check) are in :mod:`server.review`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import cast

from server.models import ActionStatus, CorrectiveAction, User

RELATED = ("report", "report__site", "created_by", "rechecked_by")


@dataclass(frozen=True)
class MyActions:
    """A person's actions: to do (overdue first), done and waiting for the
    re-check, and the latest that passed it."""

    to_do: list[CorrectiveAction]
    waiting: list[CorrectiveAction]
    passed: list[CorrectiveAction]


async def open_actions(user: User) -> int:
    """How many actions ``user`` still has to do (for the home pages' reminder)."""
    return await CorrectiveAction.filter(owner_id=user.id, status=ActionStatus.OPEN).count()


async def my_actions(user: User, today: date) -> MyActions:
    """The actions ``user`` owns, what is due first; ``today`` tells what is overdue."""
    mine = CorrectiveAction.filter(owner_id=user.id)
    to_do = await mine.filter(status=ActionStatus.OPEN).prefetch_related(*RELATED)
    # Overdue first, then by due day; those without a day last.
    to_do.sort(key=lambda a: (not a.is_overdue(today), a.due_date is None, a.due_date or today))
    waiting = await (
        mine.filter(status=ActionStatus.DONE).order_by("-done_at").prefetch_related(*RELATED)
    )
    passed = await (
        mine.filter(status=ActionStatus.VERIFIED)
        .order_by("-rechecked_at")
        .limit(20)
        .prefetch_related(*RELATED)
    )
    return MyActions(to_do=list(to_do), waiting=list(waiting), passed=list(passed))


async def overdue_by_report(report_ids: list[uuid.UUID], today: date) -> Counter[uuid.UUID]:
    """How many overdue actions each of these reports has (for lists)."""
    rows = cast(
        "list[uuid.UUID]",
        await CorrectiveAction.filter(
            report_id__in=report_ids, status=ActionStatus.OPEN, due_date__lt=today
        ).values_list("report_id", flat=True),
    )
    return Counter(rows)
