"""Embedding cache: (model id, sha256 of text) -> float32 vector, in SQLite next to the index.

Re-ingesting a changed document re-embeds only its new chunk texts; a rerun after a process crash
re-embeds nothing that was embedded before the crash (the cache commits before the index write).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A SQLite table of vectors. Safe against kill -9 (each put is one transaction, WAL journal,
    synchronous=NORMAL: see https://www.sqlite.org/wal.html#performance_considerations)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()  # one connection shared by the server's threads: serialise its use
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A new question's vector is written here before its search returns. synchronous=FULL made
        # that write wait for an fsync (8 ms p50 on the benchmark machine, half a dense search);
        # with WAL, NORMAL keeps every commit across a process crash (kill -9) and never corrupts
        # the file; only a power loss may forget the last writes, which are re-embedded when needed.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, key TEXT NOT NULL, vec BLOB NOT NULL,"
            " PRIMARY KEY (model, key))"
        )
        self._db.commit()

    def get_many(self, model_id: str, texts: Iterable[str]) -> dict[str, np.ndarray]:
        by_key = {text_key(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        keys = list(by_key)
        with self._lock:
            self._get(model_id, keys, by_key, found)
        return found

    def _get(self, model_id: str, keys: list[str], by_key: dict[str, str], found: dict[str, np.ndarray]) -> None:
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            q = f"SELECT key, vec FROM embeddings WHERE model = ? AND key IN ({','.join('?' * len(part))})"
            for key, blob in self._db.execute(q, [model_id, *part]):
                found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)

    def put_many(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [(model_id, text_key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in vectors.items()]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
