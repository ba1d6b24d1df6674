"""BM25 keyword search on PostgreSQL: the exact top-k, with MaxScore early termination.

Scoring (unchanged, Robertson & Zaragoza 2009, as LanceDB's full-text search): for each query lexeme t
in chunk c, ``idf_t * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` with k1 = 1.2, b = 0.75,
``idf_t = ln(1 + (N - df_t + 0.5) / (df_t + 0.5))``; ``tf`` and the chunk length ``dl`` (``tsv_len``)
come from the chunk's stored ``tsvector``, ``df`` from ``lexeme_df``, N and avgdl from ``corpus_stats``.

Where the data lives: ``postings`` (lexeme, row_no, tf, dl; primary key (lexeme, row_no) with tf
and dl included, so a lexeme's list is one index range read without the table; ``chunk_rows`` maps a
row number to its chunk id) is kept by every write in its own transaction (``pg_upkeep.update_stats``)
and rebuilt by ``check --repair``; the GIN
index on ``chunks.tsv`` and each chunk's ``tsvector`` (its term frequencies) serve the first round.

Early termination: MaxScore (Turtle & Flood 1995, "Query evaluation: strategies and optimizations").
A term adds less than ``ub_t = idf_t * (k1 + 1)`` to any chunk's score (the tf part is below k1 + 1).
Terms are sorted by ``ub`` descending (rarest first); ``rest[j]`` is the sum of the bounds of terms j..m.

1. Round 1 scores, exactly, the chunks that hold one of the rarest terms (enough of them to reach k
   chunks; more when the pre-filter leaves fewer) and pass the pre-filter: θ is the k-th score, a
   lower bound of the true k-th score. When the other terms' bounds sum below θ (``rest[j] < θ``),
   no other chunk can enter the top k: the answer is exact. Otherwise:
2. Round 2, one statement: the essential terms are the fewest rarest ones with ``rest[e] < θ``. Their
   postings give each chunk that holds one its partial score; without a pre-filter, the k-th largest
   partial score raises θ (a score is at least its partial score). Chunks whose partial score plus
   ``rest[e]`` cannot reach θ are dropped; then the other terms are added one at a time (highest
   bound first), each by a primary-key probe of the remaining chunks' postings, dropping those that
   can no longer reach θ. The chunks left have complete scores. The long lists of a question's
   common words are never read whole. When the planner expects the pre-filter to keep under half of
   the chunks, round 2 is the filter-first scan instead (``_selective``).

Both rounds run in one ``REPEATABLE READ`` read-only transaction, so they see one snapshot: a write
committed between them cannot change θ under the answer. The pre-filter (access clause and user
filter) is in round 1's ``WHERE`` and applied in round 2 before the probes (with a pre-filter, θ is
round 1's, which only filtered chunks set), so it never lets another tenant's chunk in and a filtered
query still returns top_k chunks whenever that many match. Round 1's scores are computed as the full
scan computes them, round 2's from the postings in float8: within 1e-9 relative of the full scan's.

``PgStore.keyword_search`` runs ``pg_packed.top_k``, which comes here when many chunks were written
since the postings lists were last packed, or for a selective pre-filter.

``full_scan`` is the previous query (scores every chunk holding any query lexeme), kept for the
benchmark's before/after and the equivalence tests.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

from groundwork.errors import QueryTimeoutError

K1, B = 1.2, 0.75  # BM25 parameters (Robertson & Zaragoza 2009), the values LanceDB's full-text search uses
# The bound is strict (the tf part is at most (k1 + 1) * tf / (tf + k1 * (1 - b)) < k1 + 1); the factor
# keeps it a bound after float rounding of the scores it is compared with.
_UB_FACTOR = (K1 + 1) * (1 + 1e-9)

# The statistics of the query's lexemes: those with df > 0 (a lexeme no chunk holds adds nothing).
_TERMS = (
    "SELECT d.lexeme, d.df, ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5))::float8 AS idf "
    "FROM lexeme_df d, corpus_stats s WHERE d.lexeme = ANY(%s) AND d.df > 0"
)


# One posting's share, in float8 throughout: a bare literal such as 0.75 is numeric in PostgreSQL and
# made every posting's arithmetic numeric (a third of round 2's time on a 7,700-posting question).
_PART = f"w.fidf * p.tf * {K1 + 1}::float8 / (p.tf + {K1}::float8 * ({1 - B}::float8 + {B}::float8 * p.dl / st.avgdl))"


# The query's lexemes with idf (w: numeric as the query before MaxScore computed it, fidf: float8, for
# the postings' sums) and the average chunk length (st). Parameter: the lexemes.
_STATS = """WITH w AS (SELECT d.lexeme, ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5)) AS idf,
                          ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5))::float8 AS fidf
                   FROM lexeme_df d, corpus_stats s WHERE d.lexeme = ANY(%s) AND d.df > 0),
             st AS (SELECT greatest(total_len::float8 / greatest(n, 1), 1) AS avgdl FROM corpus_stats)"""
# Round 2 (MaxScore's pruning). pe: each chunk's partial score over the essential lexemes, from their
# postings. θ: the larger of round 1's and, without a pre-filter, the k-th largest partial score (a
# chunk's score is at least its partial score). s0: the chunks whose partial score plus the other
# terms' bound can reach θ. Parameters: the essential lexemes, round 1's θ, k - 1 (or a huge offset,
# for none), the other terms' bound.
_ROUND2 = f""", pe AS MATERIALIZED (SELECT p.row_no, sum({_PART}) AS part
                   FROM postings p JOIN w ON w.lexeme = p.lexeme CROSS JOIN st
                   WHERE p.lexeme = ANY(%s) GROUP BY p.row_no),
             th AS (SELECT greatest(%s::float8, coalesce(
                   (SELECT part FROM pe ORDER BY part DESC LIMIT 1 OFFSET %s), 0)) AS theta),
             s0 AS (SELECT pe.row_no, pe.part FROM pe {{join}} CROSS JOIN th
                   WHERE pe.part >= (th.theta - %s) * (1 - 1e-9) - 1e-9 AND {{clause}})"""
# Then one step per non-essential term, highest bound first: its posting of each remaining chunk (a
# primary-key probe, or a scan of its list when cheaper) is added, and the chunks that can no longer
# reach θ are dropped. Parameters: the lexeme, the bound of the terms after it.
_STEP = f""",
             s{{i}} AS (SELECT s.row_no, s.part + coalesce({_PART}, 0) AS part
                   FROM s{{prev}} s CROSS JOIN st CROSS JOIN th
                   LEFT JOIN postings p ON p.lexeme = %s AND p.row_no = s.row_no
                   LEFT JOIN w ON w.lexeme = p.lexeme
                   WHERE s.part + coalesce({_PART}, 0) >= (th.theta - %s) * (1 - 1e-9) - 1e-9)"""


def _round2(steps: int, clause: str) -> str:
    """SQL of (chunk_id, score) of the top %s (score, then chunk id) among the last step's chunks (they
    passed ``clause``; their scores are complete). Parameters: lexemes, ``_ROUND2``'s, each step's,
    limit."""
    sql = _STATS + _round2_head(clause) + "".join(_STEP.format(i=i, prev=i - 1) for i in range(1, steps + 1))
    return f"{sql} SELECT r.chunk_id, s.part FROM s{steps} s JOIN chunk_rows r USING (row_no) ORDER BY s.part DESC, r.chunk_id LIMIT %s"


def _round2_head(clause: str) -> str:
    """``_ROUND2`` for ``clause``; the chunks table is joined only for a pre-filter to evaluate (with
    none, the join probed the primary key of every chunk left: 12 of 43 ms on a median question)."""
    join = "" if clause == "TRUE" else "JOIN chunk_rows r USING (row_no) JOIN chunks c USING (chunk_id)"
    return _ROUND2.replace("{join}", join).replace("{clause}", clause)


def _scored(match: str, clause: str) -> str:
    """SQL of (chunk_id, score), the top %s by score then chunk id, of the chunks that satisfy
    ``match`` and ``clause``, scored from their ``tsvector``s (as the query before MaxScore did).
    Parameters: lexemes, lexemes, the match's, the clause's, limit."""
    return f"""{_STATS}
        SELECT c.chunk_id, sum(w.idf * t.tf * {K1 + 1} / (t.tf + {K1} * (1 - {B} + {B} * c.tsv_len / st.avgdl))) AS score
        FROM chunks c CROSS JOIN st
        CROSS JOIN LATERAL (SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1) AS tf
                            FROM unnest(ts_filter(setweight(c.tsv, 'A', %s), '{{a}}')) u) t
        JOIN w ON w.lexeme = t.lexeme
        WHERE {match} AND {clause}
        GROUP BY c.chunk_id ORDER BY score DESC, c.chunk_id LIMIT %s"""


def tsquery_of(lexemes: Sequence[str]) -> str:
    """``'a' | 'b' | ...`` as tsquery input: each lexeme quoted as it is (no normalisation again),
    quotes and backslashes doubled as PostgreSQL's tsquery syntax requires."""
    return " | ".join("'" + lx.replace("\\", "\\\\").replace("'", "''") + "'" for lx in lexemes)


def set_budget(conn, deadline: float, budget_s: float) -> None:
    left_ms = int((deadline - time.monotonic()) * 1000)
    if left_ms < 1:
        raise QueryTimeoutError(
            f"the search ran past its time budget ({budget_s:g} s) and was cancelled; "
            "narrow the filter or try again later"
        )
    conn.execute(f"SET LOCAL statement_timeout = {left_ms}")


def top_k(
    conn,
    lang: str,
    query: str,
    top_k: int,
    clause: str,
    params: list[Any],
    budget_s: float,
    trace: list[tuple[int, int]] | None = None,
) -> list[tuple[str, float]]:
    """The exact BM25 top ``top_k`` as (chunk_id, score), best first (ties by chunk id).

    Args:
        conn: a connection inside a transaction that is ``REPEATABLE READ`` (one snapshot for all rounds).
        lang: the text-search configuration of the query (a checked identifier).
        clause, params: the pre-filter as SQL over ``chunks`` columns and its parameters.
        budget_s: the time budget of all rounds together (seconds); each round's ``statement_timeout``
            is what is left of it.
        trace: when given, gets (essential terms, chunks scored) per round (tests and benchmarks).
    Raises:
        QueryTimeoutError: the budget ran out between rounds (psycopg's QueryCanceled within one).
    """
    deadline = time.monotonic() + budget_s
    set_budget(conn, deadline, budget_s)
    lexemes = conn.execute(f"SELECT array_agg(DISTINCT lexeme) FROM unnest(to_tsvector('{lang}', %s))", [query])
    words = lexemes.fetchone()[0]
    if not words:
        return []  # only stop words
    terms = conn.execute(_TERMS, [words]).fetchall()
    if not terms:
        return []
    terms.sort(key=lambda t: (-t[2], t[0]))  # rarest (highest bound) first
    names = [t[0] for t in terms]
    bounds = [t[2] * _UB_FACTOR for t in terms]
    rest = [sum(bounds[i:]) for i in range(len(bounds))] + [0.0]  # rest[j]: bound of terms j..end

    def scored(match: str, match_params: list[Any]) -> list[tuple[str, float]]:
        set_budget(conn, deadline, budget_s)
        sql = _scored(match, clause)
        rows = conn.execute(sql, [names, names, *match_params, *params, top_k]).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    # Round 1: θ from the rarest terms, their prefix growing until top_k chunks pass the pre-filter.
    df_sums = list(itertools.accumulate(t[1] for t in terms))
    j, target = 0, top_k
    while True:
        j = max(j + 1, next((i + 1 for i, n in enumerate(df_sums) if n >= target), len(terms)))
        rows = scored("c.tsv @@ %s::tsquery", [tsquery_of(names[:j])])
        if trace is not None:
            trace.append((j, _count(conn, tsquery_of(names[:j]), clause, params)))
        if len(rows) == top_k or j == len(terms):
            break
        target *= 8
    if len(rows) < top_k or rest[j] < rows[-1][1]:
        return rows  # every term was essential, or the others cannot reach θ: exact
    if clause != "TRUE" and selective(conn, clause, params):
        return scored("c.tsv @@ %s::tsquery", [tsquery_of(names)])  # the filter cuts before scoring
    # Round 2: the essential terms for θ; only chunks holding one can reach it (see _ROUND2, _STEP).
    theta = rows[-1][1]
    e = next(i for i in range(1, len(terms) + 1) if rest[i] < theta)
    offset = top_k - 1 if clause == "TRUE" else 2**62  # a filtered query's partial scores may not pass it
    head = [names, names[:e], theta, offset, rest[e], *params]
    steps = [x for i in range(e, len(terms)) for x in (names[i], rest[i + 1])]
    set_budget(conn, deadline, budget_s)
    out = conn.execute(_round2(len(terms) - e, clause), [*head, *steps, top_k]).fetchall()
    if trace is not None:
        count = f"{_STATS}{_round2_head(clause)} SELECT count(*) FROM s0"
        trace.append((e, conn.execute(count, head).fetchone()[0]))
    return [(r[0], float(r[1])) for r in out]


def selective(conn, clause: str, params: list[Any], below: float = 0.5) -> bool:
    """Whether the planner expects the pre-filter to keep under ``below`` of the chunks (half by
    default: then scoring the filtered chunks that hold any query term, the filter applied first from
    its own indexes, is cheaper than round 2, whose postings hold every chunk). An estimate, no rows
    read (EXPLAIN)."""
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM chunks WHERE {clause}", params).fetchone()[0]
    n = conn.execute("SELECT n FROM corpus_stats").fetchone()[0]
    return plan[0]["Plan"]["Plan Rows"] < below * n


def _count(conn, tsq: str, clause: str, params: list[Any]) -> int:
    sql = f"SELECT count(*) FROM chunks c WHERE c.tsv @@ %s::tsquery AND {clause}"
    return int(conn.execute(sql, [tsq, *params]).fetchone()[0])


def full_scan(
    conn, lang: str, query: str, top_k: int, clause: str, params: list[Any], budget_s: float = 0
) -> list[tuple[str, float]]:
    """The query before MaxScore: every chunk holding any query lexeme is scored (one statement, so
    ``budget_s`` is the caller's ``statement_timeout``). For the benchmark's before/after and the
    equivalence tests only."""
    words = conn.execute(f"SELECT array_agg(DISTINCT lexeme) FROM unnest(to_tsvector('{lang}', %s))", [query])
    lexemes = words.fetchone()[0]
    if not lexemes:
        return []
    # plainto_tsquery ANDs the terms; a question should match chunks holding any of them.
    tsq = f"replace(plainto_tsquery('{lang}', %s)::text, '&', '|')::tsquery"
    rows = conn.execute(_scored(f"c.tsv @@ {tsq}", clause), [lexemes, lexemes, query, *params, top_k]).fetchall()
    return [(r[0], float(r[1])) for r in rows]
