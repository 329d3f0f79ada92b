"""The record of every administrative change: who, what, to what, when."""

from __future__ import annotations

from typing import Any

from server.models import AdminLog, User
from server.schemas import Shape, Timestamp

CLI = "cli"  # the actor's name for changes made on the server's command line


class LogEntry(Shape):
    """One change an admin (or the command line) made."""

    at: Timestamp
    actor: str
    action: str
    target: str
    data: dict[str, Any]


async def record(actor: User | None, action: str, target: str, **data: Any) -> None:
    """Write down one change; call it inside the change's own transaction."""
    await AdminLog.create(
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else CLI,
        action=action,
        target=target,
        data=data,
    )


async def recent(limit: int = 200, before: int | None = None) -> list[AdminLog]:
    """The latest changes, newest first (``before``: an entry id, for the next page)."""
    query = AdminLog.all()
    if before is not None:
        query = query.filter(id__lt=before)
    return list(await query.order_by("-id").limit(limit))


async def changes_to(target: str, kind: str, limit: int = 10) -> list[AdminLog]:
    """The latest changes of ``kind`` (``user.`` …) to ``target``, newest first."""
    query = AdminLog.filter(target=target, action__startswith=kind)
    return list(await query.order_by("-id").limit(limit))


def entry(log: AdminLog) -> LogEntry:
    return LogEntry(
        at=log.created_at, actor=log.actor_name, action=log.action, target=log.target, data=log.data
    )
