"""The server's log: one line per event on stderr, set up by ``onsite serve``.

The app logs under ``onsite.*`` and never configures logging itself, so
tests and embedding code stay quiet unless they ask. A traceback is folded
onto its event's line, so a line-based collector never splits one event.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """The usual format, with newlines (a traceback, a multi-line message) escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", " \\n ")


def configure(level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records at ``level`` and above to ``stream`` (stderr).

    Replaces the root logger's handlers; uvicorn's loggers propagate to it
    when uvicorn is started with ``log_config=None``.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(OneLineFormatter(FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
