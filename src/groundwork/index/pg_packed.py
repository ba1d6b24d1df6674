"""BM25 keyword search on PostgreSQL from packed postings lists, scored in NumPy.

The BM25 function is ``pg_bm25``'s (Robertson & Zaragoza 2009, k1 = 1.2, b = 0.75, LanceDB's); what
changes is where the postings are summed. Summing thousands of postings per question in SQL costs
~0.5 µs each in the executor (MaxScore, ``pg_bm25.top_k``: 58-93 ms p50 for the top 10 at 100k chunks in
bench/pg_keyword.py); reading each query lexeme's whole postings list as one ``bytea`` and summing it
in NumPy: 15-20 ms p50, the same rankings (docs/benchmarks.md, "PostgreSQL keyword side").

Layout (a log-structured index, as Lucene's segments):
- ``chunk_rows`` gives every chunk a ``row_no`` (an identity, never reused: a chunk written again gets
  a new one), and ``postings`` holds (lexeme, row_no, tf, dl) rows, written by every write.
- ``postings_packed`` holds, per lexeme, the postings of the chunks with ``row_no`` <= the pack's
  ``through`` (``gw_meta`` key ``bm25_packed``) as 16-byte big-endian records (row_no int8, tf int4,
  dl int4, PostgreSQL's ``int8send``/``int4send``). ``pack`` rebuilds it under the writers' lock, so
  no write is in flight and every row_no <= ``through`` is committed.
- A question reads the packed lists of its lexemes plus the postings rows with ``row_no`` > ``through``
  (the delta: one index range per lexeme), in the same snapshot as the rest of the search.
- A chunk deleted since the pack still has postings in the packed lists; it has no ``chunk_rows``
  row, so the last statement, which maps row numbers to chunk ids and applies the pre-filter, drops
  it. Every live chunk's score is exact: its postings did not change since its row_no was given.

The answer: the candidates whose score is at least the m-th best (ties at the cut included) go to
that statement, which returns the top k by (score desc, chunk id) among those that are live and pass
the pre-filter; fewer than k means m grows 8x and the statement runs again, so the result equals the
full scan's (scores within 1e-12 relative of ``pg_bm25``'s float8 sums, ties by chunk id).

When the delta is large (more than ``max(DELTA_FLOOR, n // 4)`` chunks written since the pack: never
packed, a re-ingest of everything), the planner expects the pre-filter to keep under ``SELECTIVE``
(5%) of the chunks, the lists hold more than ``POSTINGS_MAX`` postings, or more than
``CANDIDATES_MAX`` candidates would be needed, ``pg_bm25.top_k`` answers instead. Deleted chunks count
with the written ones (their postings stay in the packed lists until the next pack).
``PgStore.optimize`` packs when more than ``max(PACK_FLOOR, n // 10)`` chunks were written since.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from groundwork.index import pg_bm25

DELTA_FLOOR = 2000  # chunks: below this the delta is read from rows whatever the index size
PACK_FLOOR = 1000  # chunks written since the last pack before optimize packs again
_RECORD = np.dtype([("row", ">i8"), ("tf", ">i4"), ("dl", ">i4")])  # int8send || int4send || int4send
_FIRST_CUT = 64  # candidates sent to the last statement at first (then 8x as many)
# A question whose lexemes' lists hold more postings than this (16 bytes each: 64 MB read, ~4x that in
# NumPy arrays) goes to MaxScore, which reads the lists of its essential terms only: a 4,000-character
# question of common words must not make the server copy the index into memory per request.
POSTINGS_MAX = 4_000_000
# Candidates the last statement may be sent (~3.6 µs each to adapt in psycopg, in Python, outside the
# statement timeout); a question that needs more goes to MaxScore, whose filter-first scan fits then.
CANDIDATES_MAX = 32_768
# A pre-filter expected to keep under this share of the chunks goes to MaxScore's filter-first scan:
# the candidates in score order would mostly fail it (at 10% the packed lists need 1-2 more steps).
SELECTIVE = 0.05

# The records of a postings row, in the order the packed lists hold them.
_RECORD_SQL = "int8send(q.row_no) || int4send(q.tf) || int4send(q.dl)"

PACK_SQL = f"""INSERT INTO postings_packed (lexeme, postings)
SELECT q.lexeme, string_agg({_RECORD_SQL}, ''::bytea ORDER BY q.row_no) FROM postings q GROUP BY q.lexeme"""

# The written-since estimate: row numbers given since the pack (an over-estimate: a rolled-back
# write's numbers count too), against the chunk count. Parameters: none.
_GIVEN = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM chunk_row_no"
_STATE = f"""SELECT coalesce((SELECT (value->>'through')::bigint FROM gw_meta WHERE key = 'bm25_packed'), 0),
                    ({_GIVEN}), (SELECT n FROM corpus_stats),
                    coalesce((SELECT (value->>'chunks')::bigint FROM gw_meta WHERE key = 'bm25_packed'), 0)"""

# The query's lexemes with idf, each with its packed list and its delta (NULL when empty), avgdl, and
# the postings to read: the larger of the live ones (df summed) and the packed lists' records (dead
# ones included; octet_length of an uncompressed TOAST value reads no data), so short by at most the
# delta; the lists are read only when that is at most the bound. Parameters: the query text, the
# bound, the pack's through.
_LISTS = f"""WITH l AS (SELECT DISTINCT lexeme FROM unnest(to_tsvector(%s::regconfig, %s))),
     s AS (SELECT n, greatest(total_len::float8 / greatest(n, 1), 1) AS avgdl FROM corpus_stats),
     w AS (SELECT d.lexeme, d.df, ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5))::float8 AS idf
           FROM l JOIN lexeme_df d USING (lexeme) CROSS JOIN s WHERE d.df > 0),
     t AS (SELECT x.postings <= %s AS small, x.postings
           FROM (SELECT greatest(sum(w.df), coalesce(sum((SELECT octet_length(p.postings) / 16 FROM postings_packed p
                                                           WHERE p.lexeme = w.lexeme)), 0)) AS postings FROM w) x)
SELECT w.idf, s.avgdl,
       CASE WHEN t.small THEN (SELECT p.postings FROM postings_packed p WHERE p.lexeme = w.lexeme) END,
       CASE WHEN t.small THEN (SELECT string_agg({_RECORD_SQL}, ''::bytea ORDER BY q.row_no) FROM postings q
                               WHERE q.lexeme = w.lexeme AND q.row_no > %s) END,
       t.postings
FROM w CROSS JOIN s CROSS JOIN t ORDER BY w.lexeme"""


def _final(clause: str) -> str:
    """(chunk_id, score) of the top %s of the candidates (row numbers, scores) that are live and pass
    ``clause``, by score then chunk id. Parameters: row numbers, scores, the clause's, limit."""
    join = "" if clause == "TRUE" else "JOIN chunks c USING (chunk_id)"
    return (
        "SELECT r.chunk_id, u.score FROM unnest(%s::int8[], %s::float8[]) AS u(row_no, score) "
        f"JOIN chunk_rows r USING (row_no) {join} WHERE {clause} ORDER BY u.score DESC, r.chunk_id LIMIT %s"
    )


def pack(conn) -> int:
    """Rebuild ``postings_packed`` from ``postings`` in the caller's transaction, which holds the
    writers' lock (no write in flight: every row number given so far is committed or rolled back).
    Returns the new ``through``. 4-5 s at 100k chunks on 2 cores, the writers waiting meanwhile."""
    from psycopg.types.json import Jsonb

    through = conn.execute(_GIVEN).fetchone()[0]
    conn.execute("DELETE FROM postings_packed")  # not TRUNCATE: readers keep their snapshot meanwhile
    conn.execute(PACK_SQL)
    chunks = conn.execute("SELECT count(*) FROM chunk_rows").fetchone()[0]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    state = Jsonb({"through": int(through), "chunks": int(chunks), "at": at})
    conn.execute(
        "INSERT INTO gw_meta VALUES ('bm25_packed', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        (state,),
    )
    return int(through)


# The packed lists and, as they should be, the postings rows up to the pack's through, both in the
# byte order of the lexeme (COLLATE "C": Python's str order on the merge side). Parameter: through.
_PACKED_IN_ORDER = 'SELECT lexeme, postings FROM postings_packed ORDER BY lexeme COLLATE "C"'
_EXPECTED_IN_ORDER = f"""SELECT q.lexeme, string_agg({_RECORD_SQL}, ''::bytea ORDER BY q.row_no) FROM postings q
WHERE q.row_no <= %s GROUP BY q.lexeme ORDER BY q.lexeme COLLATE "C"
"""


def compare_lists(conn) -> tuple[int, int, int, str]:
    """Compare every packed list, without the records of chunks deleted since the pack, with the
    postings rows of the chunks packed (row_no <= the pack's through): (live packed records, postings
    rows packed, lexemes whose lists differ, one such lexeme or ""). A list differs when a record is
    missing, extra, repeated, out of row order or has another tf or dl. Streams both sides in lexeme
    order through server-side cursors (one list in memory at a time) inside the caller's transaction;
    reads every list: for ``groundwork check``, not for a request."""
    through = state(conn)[0]
    live = np.frombuffer(
        conn.execute(
            "SELECT coalesce(string_agg(int8send(row_no), ''::bytea), ''::bytea) FROM chunk_rows WHERE row_no <= %s",
            [through],
        ).fetchone()[0],
        ">i8",
    )
    alive = np.zeros(through + 1, bool)  # by row number: one lookup per record (np.isin sorts per list)
    alive[live] = True
    packed = conn.cursor(name="gw_check_packed")
    packed.execute(_PACKED_IN_ORDER)
    expected = conn.cursor(name="gw_check_expected")
    expected.execute(_EXPECTED_IN_ORDER, [through])
    counts = [0, 0, 0]
    example = ""
    for lexeme, have, want in _merge(packed, expected):
        rec = np.frombuffer(have or b"", _RECORD)
        rows = rec["row"]
        inside = (rows >= 0) & (rows <= through)  # a damaged record may hold any number
        keep = np.zeros(len(rec), bool)
        keep[inside] = alive[rows[inside]]
        rec = rec[keep]
        counts[0] += len(rec)
        counts[1] += len(want or b"") // _RECORD.itemsize
        if rec.tobytes() != bytes(want or b""):
            counts[2] += 1
            example = example or lexeme
    packed.close()
    expected.close()
    return counts[0], counts[1], counts[2], example


def _merge(left: Any, right: Any) -> Any:
    """(lexeme, left's value or None, right's value or None) over two cursors of (lexeme, value) rows
    sorted by lexeme (byte order), each lexeme once."""
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            yield a[0], a[1], None
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            yield b[0], None, b[1]
            b = next(right, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(left, None), next(right, None)


def state(conn) -> tuple[int, int, int]:
    """(the pack's through, chunks written or deleted since it, chunks in the index). Written: row
    numbers given since (an over-estimate: a rolled-back write's count too); deleted: the chunks
    packed that are gone (their postings stay in the lists until the next pack)."""
    through, given, n, packed = conn.execute(_STATE).fetchone()
    written = max(0, int(given) - int(through))
    deleted = max(0, int(packed) + written - int(n or 0))
    return int(through), written + deleted, int(n or 0)


def top_k(
    conn, lang: str, query: str, top_k: int, clause: str, params: list[Any], budget_s: float, trace=None
) -> list[tuple[str, float]]:
    """The exact BM25 top ``top_k`` as (chunk_id, score), best first (ties by chunk id).

    Args and errors as ``pg_bm25.top_k`` (``conn`` in a ``REPEATABLE READ`` transaction), which
    answers instead when the delta is large or the pre-filter selective. ``trace``, when given, gets
    ("packed", candidates scored, statements of the last step) or ``pg_bm25.top_k``'s entries.
    """
    deadline = time.monotonic() + budget_s
    pg_bm25.set_budget(conn, deadline, budget_s)

    def maxscore() -> list[tuple[str, float]]:
        left = max(0.001, deadline - time.monotonic())
        return pg_bm25.top_k(conn, lang, query, top_k, clause, params, left, trace)

    through, changed, n = state(conn)
    if changed > max(DELTA_FLOOR, n // 4) or (clause != "TRUE" and pg_bm25.selective(conn, clause, params, SELECTIVE)):
        return maxscore()
    lists = conn.execute(_LISTS, [lang, query, POSTINGS_MAX, through]).fetchall()
    if not lists:
        return []  # only stop words, or no chunk holds a query lexeme
    if lists[0][4] > POSTINGS_MAX:
        return maxscore()
    rows, scores = _score(lists)
    m, steps = min(len(rows), max(_FIRST_CUT, 4 * top_k)), 0
    while True:
        pick = _best(scores, m)
        pg_bm25.set_budget(conn, deadline, budget_s)
        out = conn.execute(_final(clause), [rows[pick].tolist(), scores[pick].tolist(), *params, top_k]).fetchall()
        steps += 1
        if len(out) == top_k or m >= len(rows):
            break
        if m * 8 > CANDIDATES_MAX:  # a filter that keeps far fewer than the planner said
            return maxscore()
        m = min(len(rows), m * 8)  # dead or filtered-out candidates: take more
    if trace is not None:
        trace.append(("packed", len(rows), steps))
    return [(r[0], float(r[1])) for r in out]


def _score(lists: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """(row numbers (c,) int64, BM25 scores (c,) float64) of every chunk holding a query lexeme.
    Each posting's share is computed in ``pg_bm25._PART``'s operation order (float8 throughout)."""
    parts, ids = [], []
    for idf, avgdl, packed, delta, _ in lists:
        for buf in (packed, delta):
            if buf:
                rec = np.frombuffer(buf, _RECORD)
                tf, dl = rec["tf"].astype(np.float64), rec["dl"].astype(np.float64)
                parts.append(
                    idf * tf * (pg_bm25.K1 + 1) / (tf + pg_bm25.K1 * ((1 - pg_bm25.B) + pg_bm25.B * dl / avgdl))
                )
                ids.append(rec["row"].astype(np.int64))
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0)
    rows, inverse = np.unique(np.concatenate(ids), return_inverse=True)
    scores = np.zeros(len(rows))
    start = 0
    for part in parts:  # a list holds a row number once, so += is a scatter-add
        scores[inverse[start : start + len(part)]] += part
        start += len(part)
    return rows, scores


def _best(scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of the candidates whose score is at least the m-th best (all ties at the cut)."""
    if m >= len(scores):
        return np.arange(len(scores))
    cut = np.partition(scores, len(scores) - m)[len(scores) - m]
    return np.flatnonzero(scores >= cut)
