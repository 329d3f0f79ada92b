"""(being built) Daily reminders of overdue corrective actions."""

from __future__ import annotations

from server.context import Context


class Reminders:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
