"""The review queue: answers a person should look at ("not helpful" feedback, a low grounding score,
a conversation escalated by an agent), each a ``ReviewItem`` that a reviewer resolves or dismisses.

An item keeps what the reviewer needs and nothing more: the question, the answer, its evidence
(citations / retrieved chunks: chunk id, doc id, source, score), the answer id, and the asker's
tenant and groups, which decide who may see the item (the rule of the audit log: an admin key sees an
item only when it has every group the asker had). Never the API key: at most the key's name.

Embedded: ``reviews.sqlite`` in the knowledge-base folder (WAL); PostgreSQL: the ``reviews`` table,
shared by every replica. One open item per answer id: a second "not helpful" on the same answer adds
its reason to the open item instead of opening another.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from groundwork.errors import GroundworkError, RequestError
from groundwork.state import clock
from groundwork.state.sqlite import open_db
from groundwork.types import ACL_NAME, ACL_NAME_RULE, Access

KINDS = ("not_helpful", "low_grounding", "escalation", "manual")
STATUSES = ("open", "resolved", "dismissed")
MAX_TEXT = 20_000  # characters kept of a question, an answer or a reason (a review is read by a person)
MAX_EVIDENCE = 50  # evidence entries kept per item

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    review_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    answer_id TEXT,
    tenant TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_status ON reviews(status, created_at);
CREATE INDEX IF NOT EXISTS reviews_answer ON reviews(answer_id);
"""


class ReviewNotFound(GroundworkError):
    """No review item has this id (or the caller may not see it)."""


class ReviewConflict(RequestError):
    """The item is no longer open (already resolved or dismissed)."""


@dataclass
class ReviewItem:
    """One item of the review queue.

    ``kind``: not_helpful | low_grounding | escalation | manual. ``status``: open | resolved | dismissed.
    ``evidence``: [{chunk_id, doc_id, source, score?, n?}]. ``groups``: the asker's groups (None: the
    asker saw everything, so only unrestricted admins see the item). ``reasons``: why it was opened
    (a feedback comment, "grounding 0.41 < 0.7", ...), oldest first. ``resolution`` (once resolved):
    {reviewer, answer, doc_ids, document: {doc_id, tenant, groups} | None, eval_question_id}.
    Times are UTC ISO 8601.
    """

    review_id: str
    created_at: str
    kind: str
    question: str
    answer: str
    evidence: list[dict[str, Any]]
    answer_id: str | None
    tenant: str | None
    groups: list[str] | None
    reasons: list[str] = field(default_factory=list)
    asker: str | None = None
    status: str = "open"
    resolved_at: str | None = None
    resolution: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def visible_to(self, access: Access | None) -> bool:
        """The audit log's rule: same tenant, and every group the asker had (None/everything sees all)."""
        if access is None or access.everything:
            return True
        if self.tenant != access.tenant or self.groups is None:
            return False
        return set(self.groups) <= set(access.groups)


def _clip(text: str | None) -> str:
    return (text or "")[:MAX_TEXT]


def new_item(
    kind: str,
    question: str,
    answer: str,
    evidence: list[dict[str, Any]] | None,
    answer_id: str | None,
    tenant: str | None,
    groups: list[str] | None,
    reason: str | None,
    asker: str | None = None,
) -> ReviewItem:
    """A checked, clipped new item. Raises RequestError for an unknown kind or an invalid tenant/group name."""
    if kind not in KINDS:
        raise RequestError(f"review kind must be one of {', '.join(KINDS)}, not {kind!r}")
    for name in (tenant, *(groups or [])):
        if name is not None and not ACL_NAME.match(name):
            raise RequestError(f"invalid tenant or group name {name!r}: {ACL_NAME_RULE}")
    keep = ("chunk_id", "doc_id", "source", "score", "n", "text")
    ev = [{k: e[k] for k in keep if k in e} for e in (evidence or [])[:MAX_EVIDENCE] if isinstance(e, dict)]
    return ReviewItem(
        review_id=uuid.uuid4().hex[:16],
        created_at=clock.now(),
        kind=kind,
        question=_clip(question),
        answer=_clip(answer),
        evidence=ev,
        answer_id=answer_id,
        tenant=tenant,
        groups=None if groups is None else sorted(set(groups)),
        reasons=[_clip(reason)] if reason else [],
        asker=asker,
    )


def _from_body(body: dict[str, Any]) -> ReviewItem:
    return ReviewItem(**body)


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise RequestError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")


def _finish(item: ReviewItem, status: str, resolution: dict[str, Any]) -> ReviewItem:
    if status not in ("resolved", "dismissed"):
        raise RequestError("a review is finished as 'resolved' or 'dismissed'")
    if item.status != "open":
        raise ReviewConflict(f"review {item.review_id} is already {item.status}")
    item.status, item.resolved_at, item.resolution = status, clock.now(), resolution
    return item


class _Opening:
    """``open`` (see ``ReviewQueue.open``): a checked new item, stored by the subclass's ``_insert``,
    which merges it into the open item of the same answer id when there is one."""

    def open(
        self,
        kind: str,
        question: str,
        answer: str,
        evidence: list[dict[str, Any]] | None,
        answer_id: str | None,
        tenant: str | None,
        groups: list[str] | None,
        reason: str | None = None,
        asker: str | None = None,
    ) -> ReviewItem:
        item = new_item(kind, question, answer, evidence, answer_id, tenant, groups, reason, asker)
        return self._insert(item, reason)

    def _insert(self, item: ReviewItem, reason: str | None) -> ReviewItem:
        raise NotImplementedError


class SqliteReviewQueue(_Opening):
    """The review queue in ``reviews.sqlite`` (WAL mode) in the knowledge-base folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path, _SCHEMA)

    def _insert(self, item: ReviewItem, reason: str | None) -> ReviewItem:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one open item per answer id, across processes
            try:
                existing = self._open_for(item.answer_id)
                if existing is not None:
                    if reason:
                        existing.reasons.append(_clip(reason))
                        self._save(existing)
                    item = existing
                else:
                    self._db.execute(
                        "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (item.review_id, item.created_at, item.status, item.kind, item.answer_id, item.tenant,
                         json.dumps(item.to_dict(), ensure_ascii=False)),
                    )  # fmt: skip
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return item

    def _open_for(self, answer_id: str | None) -> ReviewItem | None:
        if answer_id is None:
            return None
        row = self._db.execute(
            "SELECT body FROM reviews WHERE answer_id = ? AND status = 'open'", (answer_id,)
        ).fetchone()
        return _from_body(json.loads(row[0])) if row else None

    def _save(self, item: ReviewItem) -> None:
        self._db.execute(
            "UPDATE reviews SET status = ?, body = ? WHERE review_id = ?",
            (item.status, json.dumps(item.to_dict(), ensure_ascii=False), item.review_id),
        )

    def _load(self, review_id: str, access: Access | None) -> ReviewItem:
        row = self._db.execute("SELECT body FROM reviews WHERE review_id = ?", (review_id,)).fetchone()
        item = _from_body(json.loads(row[0])) if row else None
        if item is None or not item.visible_to(access):
            raise ReviewNotFound(f"no review with id {review_id}")
        return item

    def get(self, review_id: str, access: Access | None = None) -> ReviewItem:
        with self._lock:
            return self._load(review_id, access)

    def list(
        self, status: str | None = "open", limit: int = 50, offset: int = 0, access: Access | None = None
    ) -> list[ReviewItem]:
        _check_status(status)
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM reviews WHERE (? IS NULL OR status = ?) ORDER BY created_at DESC, review_id",
                (status, status),
            ).fetchall()
        items = [i for i in (_from_body(json.loads(r[0])) for r in rows) if i.visible_to(access)]
        return items[offset : offset + limit]

    def finish(
        self, review_id: str, status: str, resolution: dict[str, Any], access: Access | None = None
    ) -> ReviewItem:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # two reviewers at once: exactly one wins
            try:
                item = _finish(self._load(review_id, access), status, resolution)
                self._save(item)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return item

    def close(self) -> None:
        self._db.close()


class PgReviewQueue(_Opening):
    """The review queue in PostgreSQL (``reviews`` table), shared by every replica; same interface and
    visibility rule as ``SqliteReviewQueue``. ``pool`` is a psycopg_pool.ConnectionPool."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def _insert(self, item: ReviewItem, reason: str | None) -> ReviewItem:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn, conn.transaction():
            if item.answer_id is not None:  # serialise the opens of one answer across replicas
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (item.answer_id,))
                row = conn.execute(
                    "SELECT body FROM reviews WHERE answer_id = %s AND status = 'open'", (item.answer_id,)
                ).fetchone()
                if row is not None:
                    existing = _from_body(row[0])
                    if reason:
                        existing.reasons.append(_clip(reason))
                        conn.execute(
                            "UPDATE reviews SET body = %s WHERE review_id = %s",
                            (Jsonb(existing.to_dict()), existing.review_id),
                        )
                    return existing
            conn.execute(
                "INSERT INTO reviews VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (item.review_id, item.created_at, item.status, item.kind, item.answer_id, item.tenant,
                 Jsonb(item.to_dict())),
            )  # fmt: skip
        return item

    @staticmethod
    def _load(conn, review_id: str, access: Access | None, lock: bool = False) -> ReviewItem:
        sql = "SELECT body FROM reviews WHERE review_id = %s" + (" FOR UPDATE" if lock else "")
        row = conn.execute(sql, (review_id,)).fetchone()
        item = _from_body(row[0]) if row else None
        if item is None or not item.visible_to(access):
            raise ReviewNotFound(f"no review with id {review_id}")
        return item

    def get(self, review_id: str, access: Access | None = None) -> ReviewItem:
        with self.pool.connection() as conn:
            return self._load(conn, review_id, access)

    def list(
        self, status: str | None = "open", limit: int = 50, offset: int = 0, access: Access | None = None
    ) -> list[ReviewItem]:
        _check_status(status)
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT body FROM reviews WHERE (%s::text IS NULL OR status = %s) ORDER BY created_at DESC, review_id",
                (status, status),
            ).fetchall()
        items = [i for i in (_from_body(r[0]) for r in rows) if i.visible_to(access)]
        return items[offset : offset + limit]

    def finish(
        self, review_id: str, status: str, resolution: dict[str, Any], access: Access | None = None
    ) -> ReviewItem:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn, conn.transaction():
            item = _finish(self._load(conn, review_id, access, lock=True), status, resolution)
            conn.execute(
                "UPDATE reviews SET status = %s, body = %s WHERE review_id = %s",
                (item.status, Jsonb(item.to_dict()), item.review_id),
            )
        return item

    def close(self) -> None:
        pass  # the pool belongs to the store


def evidence_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The evidence of an audit record (``answer_record``): its citations with their retrieval scores,
    or, for an answer without citations, its retrieved chunks."""
    scores = {r["chunk_id"]: r.get("score") for r in record.get("retrieved") or []}
    cited = [{**c, "score": scores.get(c["chunk_id"])} for c in record.get("cited") or []]
    return cited or [dict(r) for r in record.get("retrieved") or []]


def open_for_record(queue: Any, record: dict[str, Any], kind: str, reason: str | None) -> ReviewItem:
    """Open (or add ``reason`` to) the review of the answer of audit ``record`` on ``queue`` (a
    ReviewQueue): its question, answer, evidence, tenant and the asker's groups (``access_groups``)."""
    return queue.open(
        kind,
        record.get("question") or "",
        record.get("answer") or "",
        evidence_of(record),
        record.get("answer_id"),
        record.get("tenant"),
        record.get("access_groups"),
        reason,
        record.get("caller"),
    )
