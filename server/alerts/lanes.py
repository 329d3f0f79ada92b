"""Lanes: the messages of one recipient as this server sends them, so that no
recipient takes every send.

A person's devices share a lane that sends :data:`PER_PERSON` at once, so one
person's dead endpoints cannot take every slot. A work-chat robot's lane
sends one at a time, in order, at most ``robots.PER_MINUTE`` started in any
minute, and holds back what waits behind a message that is to be retried.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from server.alerts import robots
from server.models import DeliveryKind, PushDelivery

PACE_WINDOW = timedelta(seconds=60)
# At most this many of one person's messages are sent at once.
PER_PERSON = 2

# ("user", id) or ("endpoint", delivery id) for a person's, ("robot", channel id).
LaneKey = tuple[str, object]


@dataclass
class Lane:
    """The messages of one recipient as this server sends them: a person's
    devices (``limit`` at once), or a work-chat robot (one at a time, paced)."""

    limit: int
    paced: bool = False  # a robot: at most robots.PER_MINUTE a minute
    in_flight: int = 0
    started: deque[datetime] = field(default_factory=deque)  # a robot's last sends
    # A robot is left alone until then: its service said "too fast", or a
    # message to it waits for its retry (nothing newer overtakes it).
    held_until: datetime | None = None
    waiting: deque[PushDelivery] = field(default_factory=deque)

    def free_at(self, now: datetime) -> datetime:
        """When the next message may go: after a hold, and for a robot at most
        ``robots.PER_MINUTE`` started in any minute."""
        while self.started and self.started[0] <= now - PACE_WINDOW:
            self.started.popleft()
        free = now
        if self.paced and len(self.started) >= robots.PER_MINUTE:
            free = self.started[0] + PACE_WINDOW
        if self.held_until and self.held_until > free:
            free = self.held_until
        return free


def key_of(delivery: PushDelivery) -> LaneKey | None:
    """The lane of a claimed message: its person's, or its robot's; None for a
    robot's message whose channel was removed meanwhile."""
    if DeliveryKind.of(delivery.endpoint) is DeliveryKind.DEVICE:
        sub = delivery.subscription
        return ("user", sub.user_id) if sub else ("endpoint", delivery.id)
    if delivery.channel_id is None:
        return None
    return ("robot", delivery.channel_id)


def new_lane(key: LaneKey) -> Lane:
    """An empty lane for the recipient ``key`` names."""
    if key[0] == "robot":
        return Lane(limit=1, paced=True)
    return Lane(limit=PER_PERSON)
