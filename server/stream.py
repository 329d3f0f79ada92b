"""The live stream of report events: a hub that notices new events, and each user's feed.

One :class:`Hub` per process watches the ``event`` table: services call
:meth:`Hub.notify` (``ctx.changed``) after they commit, and a poller reads
the table every ``poll`` seconds anyway, so events committed by another
server on the same database arrive too. The poller is one query per
interval for the whole process; only when it finds new events does each
open stream run its own query, for the events its user may see.

Event ids come from a sequence, and on PostgreSQL two transactions may
commit out of order (ids 10 and 11 taken, 11 committed first). A stream
that moved past 11 would never see 10, so the hub publishes a watermark
instead of the newest id: the highest id below which every id is either
committed or has been missing for ``settle`` seconds (a rolled-back
transaction leaves a hole that never fills). Streams read only up to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import cast

import anyio
from pydantic import BaseModel, Field
from sse_starlette import ServerSentEvent
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from server.access import reports_visible_to
from server.errors import invalid
from server.loop import Loop
from server.models import Event, Report, User
from server.report_shapes import RELATED, EventOut, ReportSummary, summary_fields
from server.schemas import Person, Shape

log = logging.getLogger("onsite.stream")

BATCH = 200  # events one stream reads at a time
LOOKAHEAD = 1000  # ids past the watermark the poller reads at a time
RETRY_MS = 3000  # how soon a browser reconnects after losing the stream
RECHECK = 15.0  # seconds between checks that the stream's session still holds


class StreamEvent(EventOut):
    """An event of a report's timeline, with its id (the SSE ``id:``)."""

    id: int


class ReportChange(Shape):
    """One message of ``/api/stream``: what happened, and the report after it."""

    event: StreamEvent
    report: ReportSummary


class StreamQuery(BaseModel):
    last_event_id: int | None = Field(
        default=None,
        ge=0,
        description="resume after this event id (for a first connect; "
        "a browser's reconnect sends the Last-Event-ID header instead)",
    )


def resume_after(header: str | None, query: StreamQuery) -> int | None:
    """The event id to resume after: the Last-Event-ID header, else the query's."""
    if not header or not header.strip():
        return query.last_event_id
    if not header.strip().isdigit():
        raise invalid("Last-Event-ID", "is not an event id this server gave out.")
    return int(header)


class Hub:
    """Tells the streams of this process that events were committed, here or elsewhere."""

    def __init__(
        self,
        *,
        poll: float = 0.5,
        settle: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.poll = poll
        self.settle = settle
        self.monotonic = monotonic
        # Every event id up to here is committed (or given up as rolled back).
        self.newest = 0
        self._advanced = asyncio.Event()
        # A hole in the ids, keyed by the id just above it: when first seen.
        self._holes: dict[int, float] = {}
        self._watchers: list[Callable[[], None]] = []
        self.loop = Loop("stream-hub", self._look)

    def notify(self) -> None:
        """Events were just committed here: look now rather than at the next poll."""
        self.loop.kick()

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the watermark moves (new events anywhere)."""
        self._watchers.append(callback)

    async def start(self) -> None:
        """Start at the newest event: a stream without Last-Event-ID gets no history."""
        last = cast(
            "list[int]", await Event.all().order_by("-id").limit(1).values_list("id", flat=True)
        )
        self.newest = last[0] if last else 0
        self.loop.start()

    @property
    def alive(self) -> bool:
        """Its loop runs (for /healthz): started and not ended by an error."""
        return self.loop.alive

    async def stop(self) -> None:
        await self.loop.stop()

    async def wait(self, seen: int) -> None:
        """Until the watermark passes ``seen``."""
        while self.newest <= seen:
            await self._advanced.wait()

    async def advance(self) -> bool:
        """Read the ids past the watermark and move it over those without a hole;
        True if there may be more to read at once."""
        found = cast(
            "list[int]",
            await Event.filter(id__gt=self.newest)
            .order_by("id")
            .limit(LOOKAHEAD)
            .values_list("id", flat=True),
        )
        mark, now = self.newest, self.monotonic()
        for event_id in found:
            if event_id != mark + 1:
                since = self._holes.setdefault(event_id, now)
                if now - since < self.settle:
                    break  # perhaps a transaction not yet committed: wait for it
                # Rolled back, most likely; a transaction slower than this
                # would reach the timelines but not the live streams.
                log.info("event ids %d to %d never appeared; passed over", mark + 1, event_id - 1)
            mark = event_id
        self._holes = {above: t for above, t in self._holes.items() if above > mark}
        if mark > self.newest:
            self.newest = mark
            # Wake every waiting stream; later waits get a fresh event.
            self._advanced.set()
            self._advanced = asyncio.Event()
            for callback in self._watchers:
                callback()
        return len(found) == LOOKAHEAD and mark == found[-1]

    async def _look(self) -> float:
        """Move the watermark; then the poll interval until the next look."""
        try:
            if await self.advance():
                return 0  # a burst: read on at once
        except Exception:  # the poller must outlive a bad moment
            log.exception("reading new events failed")
        return self.poll


async def follow(
    hub: Hub,
    user: User,
    after: int | None,
    *,
    stop: anyio.Event | None = None,
    recheck: float = RECHECK,
) -> AsyncIterator[ServerSentEvent]:
    """The SSE messages for ``user``: events after ``after`` (the Last-Event-ID),
    or from now on without it, then each new one they may see, as it comes.

    It ends when ``stop`` is set (the server is shutting down), and when a
    check every ``recheck`` seconds finds the session revoked or the user
    deactivated (the browser's reconnect then gets 401); that check also
    applies a change of the user's sites.
    """
    checked = hub.newest if after is None else after
    # The id here makes a reconnect start from this point even when the
    # stream is lost before its first event.
    yield ServerSentEvent(id=str(checked), retry=RETRY_MS)
    visible = await reports_visible_to(user)
    next_check = time.monotonic() + recheck
    stopping = asyncio.ensure_future(stop.wait()) if stop else None
    try:
        while True:
            mark = hub.newest
            if checked < mark:
                events = await _events(visible, checked, mark)
                for event in events:
                    yield _message(event)
                if len(events) == BATCH:
                    checked = events[-1].id
                    continue
                checked = mark
            await _idle(hub, checked, stopping, next_check - time.monotonic())
            if stopping and stopping.done():
                return
            if time.monotonic() >= next_check:
                fresh = await User.get_or_none(id=user.id)
                if (
                    fresh is None
                    or not fresh.is_active
                    or fresh.session_version != user.session_version
                ):
                    return
                user, visible = fresh, await reports_visible_to(fresh)
                next_check = time.monotonic() + recheck
    finally:
        if stopping:
            stopping.cancel()


async def _idle(hub: Hub, seen: int, stopping: asyncio.Future[None] | None, seconds: float) -> None:
    """Until the watermark passes ``seen``, ``stopping`` is done, or ``seconds`` pass."""
    waiting = asyncio.ensure_future(hub.wait(seen))
    try:
        await asyncio.wait(
            {waiting, stopping} if stopping else {waiting},
            timeout=max(0.0, seconds),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        waiting.cancel()


async def _events(visible: QuerySet[Report], after: int, upto: int) -> list[Event]:
    return list(
        await Event.filter(id__gt=after, id__lte=upto, report_id__in=Subquery(visible.values("id")))
        .order_by("id")
        .limit(BATCH)
        .prefetch_related("actor", "report", *(f"report__{r}" for r in (*RELATED, "steps")))
    )


def _message(event: Event) -> ServerSentEvent:
    report = event.report
    change = ReportChange(
        event=StreamEvent(
            id=event.id,
            kind=event.kind,
            at=event.created_at,
            actor=Person.of(event.actor),
            data=event.data,
        ),
        report=ReportSummary(**summary_fields(report, list(report.steps))),
    )
    return ServerSentEvent(change.model_dump_json(), event="report", id=str(event.id))
