"""A worker's loop: one asyncio task, started, watched and stopped the same way.

Escalation, reminders, the stream hub, the notices between servers and the
push deliverer each run in the server process beside the requests. What
they share is here: a :class:`Loop` runs a step again and again, waiting
between steps as long as the step asks unless it is kicked; ``alive`` says
whether the task still runs (``/healthz``); ``stop`` cancels it, or first
gives it a moment to end by itself. What a step does, and what it logs when
it fails, stays with the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

# One round of a worker. It returns how long to wait before the next round:
# seconds (cut short by a kick), 0 for at once, or None when the loop is done.
Step = Callable[[], Awaitable[float | None]]


class Loop:
    """Runs ``step`` in a task named ``name``, from :meth:`start` until :meth:`stop`
    or until a step returns None."""

    def __init__(self, name: str, step: Step) -> None:
        self.name = name
        self.step = step
        self.task: asyncio.Task[None] | None = None
        self._kicked = asyncio.Event()

    def start(self) -> None:
        """Run the first step now, in a task of its own."""
        self.task = asyncio.create_task(self._run(), name=self.name)

    @property
    def alive(self) -> bool:
        """Started and not ended (by an error, a cancel, or being done)."""
        return self.task is not None and not self.task.done()

    def kick(self) -> None:
        """Run the next step without waiting: something happened that it should
        see now. A kick during a step is kept for the wait after it."""
        self._kicked.set()

    async def stop(self, grace: float = 0.0) -> bool:
        """Give the task up to ``grace`` seconds to end by itself, then cancel it.
        Whether it had ended by itself (True if it never started)."""
        task = self.task
        if task is None:
            return True
        if grace > 0:
            await asyncio.wait({task}, timeout=grace)
        ended = task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return ended

    async def _run(self) -> None:
        while True:
            # Cleared before the step: a kick that comes while it runs is kept
            # for the wait below, not lost until the wait ends.
            self._kicked.clear()
            wait = await self.step()
            if wait is None:
                return
            if wait <= 0:
                await asyncio.sleep(0)  # others run between steps that go on at once
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._kicked.wait()
