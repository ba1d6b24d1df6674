"""The embedded state's SQLite connections: one file in the knowledge-base folder, WAL mode (readers
never wait for the writer), shared by the threads of a process under the caller's lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to ``path`` (created with its folder) with ``schema`` applied; autocommit, so each
    statement is its own transaction unless ``immediate`` groups them. Waits up to 30 s for a writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction taken at its start (BEGIN IMMEDIATE), so writers in two processes run one
    after the other (a read-then-write sees no other writer in between); rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
