"""Whether this app server can serve: its database answers and its workers run.

For load balancers (``GET /healthz``): the answer names each part by a word
only, never a version, a path or an error's text, since anyone may ask.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Protocol

from tortoise import Tortoise

log = logging.getLogger("onsite.health")

# Long enough for a busy database, short enough that a balancer's own
# timeout (often 5 s) sees our 503 rather than its own.
DB_TIMEOUT_S = 2.0


class Worker(Protocol):
    @property
    def alive(self) -> bool: ...


async def database_ok(wait_s: float = DB_TIMEOUT_S) -> bool:
    """A trivial query answers within ``wait_s`` seconds."""
    try:
        async with asyncio.timeout(wait_s):
            await Tortoise.get_connection("default").execute_query("SELECT 1")
    except Exception:  # unreachable, closed, refused, timed out: all are "not ok"
        log.warning("health: the database did not answer", exc_info=True)
        return False
    return True


async def check(
    workers: Mapping[str, Worker], wait_s: float = DB_TIMEOUT_S
) -> tuple[bool, dict[str, object]]:
    """Healthy or not, and the body that says which part is not."""
    database = await database_ok(wait_s)
    states = {name: "ok" if worker.alive else "stopped" for name, worker in workers.items()}
    healthy = database and all(state == "ok" for state in states.values())
    body: dict[str, object] = {
        "status": "ok" if healthy else "failing",
        "database": "ok" if database else "unreachable",
        "workers": states,
    }
    return healthy, body
