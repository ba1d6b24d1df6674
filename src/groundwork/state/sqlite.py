"""The embedded state files' one way of opening SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """``path`` (its folder created) in WAL mode and autocommit, shared by the threads of a process
    (callers hold a lock), waiting up to 10 s for another process's write; ``schema`` applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=10000")  # the CLI and the server may write at once
    db.executescript(schema)
    return db
