"""Timestamps of state records (jobs, audit, reviews, experiments, monitor runs, ...): ISO 8601 in
UTC with microseconds, each later than every earlier one of this process. Lists are ordered by
these ``created_at`` strings; at millisecond resolution two records stamped in the same millisecond
came back in either order (a run of ``groundwork monitor`` listed before the one it followed)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_LAST = [datetime.min.replace(tzinfo=UTC)]
_LOCK = threading.Lock()


def now() -> str:
    """The current UTC time, e.g. ``2026-12-01T04:40:10.123456+00:00``; strictly increasing within
    the process (a clock step back or a second call in the same microsecond adds 1 µs to the last)."""
    with _LOCK:
        stamp = max(datetime.now(UTC), _LAST[0] + timedelta(microseconds=1))
        _LAST[0] = stamp
    return stamp.isoformat(timespec="microseconds")
