"""What the last runs learnt about each web page: its validators (ETag, Last-Modified), the sha256 of
its body, its media type and its links, per source. A SQLite file in the knowledge-base folder
(``web_pages.sqlite``).

It is a cache, never the truth about the index: a 304 is trusted only when the recorded sha256 equals
the indexed document's content hash (else the page is fetched again in full), so a lost or stale file
costs full downloads, never a wrong document. It also says which pages a source yielded before, so
that pages it no longer yields are deleted on sync; a replica that never ran a source deletes nothing
of it (see docs/sources.md).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pages (source TEXT NOT NULL, url TEXT NOT NULL, doc_url TEXT NOT NULL, "
    "etag TEXT, last_modified TEXT, sha256 TEXT NOT NULL, content_type TEXT NOT NULL, links TEXT NOT NULL, "
    "PRIMARY KEY (source, url))"
)


@dataclass(frozen=True)
class CachedPage:
    """One page as last fetched: ``url`` as listed, ``doc_url`` where it ended (its document id)."""

    url: str
    doc_url: str
    sha256: str
    content_type: str
    etag: str | None = None
    last_modified: str | None = None
    links: list[str] = field(default_factory=list)


class PageCache:
    """Pages per source (a sitemap URL, a start URL, or a URL list file)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def pages(self, source: str) -> dict[str, CachedPage]:
        """Every page ``source`` yielded last time, by listed URL."""
        with self._lock:
            rows = self._db.execute(
                "SELECT url, doc_url, sha256, content_type, etag, last_modified, links FROM pages WHERE source = ?",
                (source,),
            ).fetchall()
        return {r[0]: CachedPage(*r[:6], links=json.loads(r[6])) for r in rows}

    def replace(self, source: str, pages: list[CachedPage]) -> None:
        """Make ``pages`` what ``source`` holds (one transaction)."""
        rows = [
            (source, p.url, p.doc_url, p.etag, p.last_modified, p.sha256, p.content_type, json.dumps(p.links))
            for p in pages
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM pages WHERE source = ?", (source,))
                self._db.executemany("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._db.close()
