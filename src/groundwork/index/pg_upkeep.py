"""BM25 upkeep on PostgreSQL: the statistics and postings every write keeps exact in its own
transaction, and the recount that ``groundwork check`` compares them with (and ``--repair`` writes).

Tables (``pg_schema``): ``chunks.tsv_len`` (a chunk's BM25 length), ``lexeme_df``, ``corpus_stats``,
``chunk_rows`` (row numbers, never reused) and ``postings`` (lexeme, row_no, tf, dl), read by
``pg_bm25`` and ``pg_packed``. Every function runs inside the caller's transaction; writers take
``lock_writes`` first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from groundwork.index import pg_packed
from groundwork.index.store import StatisticMismatch

WRITE_LOCK = 0x67776277  # serialises writers: BM25 statistics are updated in each write's transaction
# A chunk's BM25 length (the tokens of its tsvector, as staged_copy counts them) and every lexeme's
# document frequency, recounted from the stored tsvectors (what `groundwork check` compares).
_LEN_OF = "SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0) AS len FROM unnest({tsv})"
_LEN_OF_TSV = _LEN_OF.format(tsv="c.tsv")
# The BM25 postings of chunks c (lexeme, row_no, tf, dl), as pg_bm25 reads them; tf as the length counts it.
_POSTINGS_OF = (
    "SELECT u.lexeme, r.row_no, coalesce(array_length(u.positions, 1), 1), c.tsv_len "
    "FROM chunks c JOIN chunk_rows r USING (chunk_id), unnest(c.tsv) u"
)
_COUNTED_DF = "counted AS (SELECT u.lexeme, count(*) AS df FROM chunks c, unnest(c.tsv) u GROUP BY u.lexeme)"


def lock_writes(conn) -> None:
    """One writer at a time (across replicas): the statistics rows would otherwise deadlock or race."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))


@contextmanager
def staged_copy(conn, language: str, columns: Sequence[str]) -> Iterator[Any]:
    """A binary ``COPY`` of rows of ``chunks``' ``columns`` (yielded: call ``write_row``) that lands in
    ``chunks`` with each row's BM25 length (``tsv_len``) set as it is inserted.

    The rows go to a temporary table, then one ``INSERT ... SELECT`` computes ``tsv_len`` from the
    same ``to_tsvector`` as the generated ``tsv`` column. Setting it by an ``UPDATE`` after the
    ``COPY`` (as before) wrote every new row twice: the new versions do not fit on the ``COPY``'s
    full pages, so every index, the HNSW graph too, got a second entry per row, and the table a dead
    row to vacuum. Runs inside the caller's transaction; the temporary table is dropped at its end.
    """
    cols = ", ".join(columns)
    conn.execute("DROP TABLE IF EXISTS pg_temp.gw_stage")
    conn.execute(f"CREATE TEMP TABLE gw_stage ON COMMIT DROP AS SELECT {cols} FROM chunks WITH NO DATA")
    with conn.cursor().copy(f"COPY pg_temp.gw_stage ({cols}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        yield copy
    length = _LEN_OF.format(tsv=f"to_tsvector('{language}'::regconfig, s.search_text)")
    conn.execute(f"INSERT INTO chunks ({cols}, tsv_len) SELECT {cols}, ({length}) FROM pg_temp.gw_stage s")
    conn.execute("DROP TABLE pg_temp.gw_stage")


def update_postings(conn, doc_ids: list[str], sign: int) -> None:
    """Add (+1) or remove (-1) the BM25 postings and row numbers of ``doc_ids``' current rows. A
    chunk written again gets a new row number (``pg_packed``: a packed list never holds a live
    chunk's old postings)."""
    if sign < 0:  # by primary key, from the rows' own tsvectors: no index on postings.row_no needed
        conn.execute(
            "DELETE FROM postings p USING chunks c JOIN chunk_rows r USING (chunk_id), unnest(c.tsv) u "
            "WHERE c.doc_id = ANY(%s) AND p.lexeme = u.lexeme AND p.row_no = r.row_no",
            (doc_ids,),
        )
        conn.execute(
            "DELETE FROM chunk_rows r USING chunks c WHERE c.doc_id = ANY(%s) AND r.chunk_id = c.chunk_id", (doc_ids,)
        )
    else:
        conn.execute(
            "INSERT INTO chunk_rows (chunk_id) SELECT chunk_id FROM chunks WHERE doc_id = ANY(%s) ORDER BY chunk_id",
            (doc_ids,),
        )
        conn.execute(f"INSERT INTO postings {_POSTINGS_OF} WHERE c.doc_id = ANY(%s) ORDER BY 1, 2", (doc_ids,))


def update_stats(conn, doc_ids: list[str], sign: int) -> None:
    """Add (+1) or remove (-1) the BM25 statistics and postings of ``doc_ids``' current rows."""
    update_postings(conn, doc_ids, sign)
    conn.execute(
        "INSERT INTO lexeme_df (lexeme, df) SELECT u.lexeme, %s * count(*) FROM chunks c, unnest(c.tsv) u "
        "WHERE c.doc_id = ANY(%s) GROUP BY u.lexeme ORDER BY u.lexeme "
        "ON CONFLICT (lexeme) DO UPDATE SET df = lexeme_df.df + EXCLUDED.df",
        (sign, doc_ids),
    )
    conn.execute(
        "UPDATE corpus_stats s SET n = s.n + %s * x.n, total_len = s.total_len + %s * x.len "
        "FROM (SELECT count(*) AS n, coalesce(sum(tsv_len), 0) AS len FROM chunks WHERE doc_id = ANY(%s)) x",
        (sign, sign, doc_ids),
    )


def stat_mismatches(conn) -> list[StatisticMismatch]:
    """Every BM25 statistic that differs from a recount from the stored ``tsvector``s: ``chunks.tsv_len``,
    ``corpus_stats`` (n, total_len), ``lexeme_df``, ``postings`` and ``chunk_rows``; and the packed
    postings lists that differ from ``postings`` (``pg_packed.compare_lists``). Empty when exact."""
    found = []
    stats = conn.execute("SELECT n, total_len FROM corpus_stats").fetchone() or (0, 0)
    n, stored_len, total, bad_len = conn.execute(
        "SELECT count(*), coalesce(sum(c.tsv_len), 0), coalesce(sum(l.len), 0), "
        f"count(*) FILTER (WHERE c.tsv_len <> l.len) FROM chunks c CROSS JOIN LATERAL ({_LEN_OF_TSV}) l"
    ).fetchone()
    if bad_len:
        note = f"{bad_len} chunks' lengths differ"
        found.append(StatisticMismatch("chunks.tsv_len", int(stored_len), int(total), note))
    for name, stored, counted in (("corpus_stats.n", stats[0], n), ("corpus_stats.total_len", stats[1], total)):
        if int(stored) != int(counted):
            found.append(StatisticMismatch(name, int(stored), int(counted)))
    lexemes, stored_sum, counted_sum, example = conn.execute(
        f"WITH {_COUNTED_DF}, s AS (SELECT lexeme, df FROM lexeme_df WHERE df <> 0), "
        "d AS (SELECT lexeme, coalesce(s.df, 0) AS stored, coalesce(c.df, 0) AS counted "
        "      FROM s FULL JOIN counted c USING (lexeme) WHERE s.df IS DISTINCT FROM c.df) "
        "SELECT count(*), coalesce(sum(stored), 0), coalesce(sum(counted), 0), "
        "min(format('%s: %s stored, %s counted', lexeme, stored, counted)) FROM d"
    ).fetchone()
    if lexemes:
        note = f"{lexemes} lexemes' document frequencies differ (e.g. {example})"
        found.append(StatisticMismatch("lexeme_df", int(stored_sum), int(counted_sum), note))
    stored_n, counted_n, differ = conn.execute(
        f"WITH r AS ({_POSTINGS_OF}), p AS (SELECT * FROM postings) "
        "SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM r), "
        "(SELECT count(*) FROM ((TABLE p EXCEPT ALL TABLE r) UNION ALL (TABLE r EXCEPT ALL TABLE p)) x)"
    ).fetchone()
    rows, chunks, unmatched = conn.execute(
        "SELECT (SELECT count(*) FROM chunk_rows), (SELECT count(*) FROM chunks), "
        "(SELECT count(*) FROM chunk_rows r FULL JOIN chunks c USING (chunk_id) WHERE r.row_no IS NULL OR c.doc_id IS NULL)"
    ).fetchone()
    packed, expected, lists, example = pg_packed.compare_lists(conn)
    for name, bad, stored, counted, what in (
        ("postings", differ, stored_n, counted_n, "postings differ from the chunks' tsvectors"),
        (
            "postings_packed",
            lists,
            packed,
            expected,
            f"lexemes' packed lists differ from their postings (e.g. {example})",
        ),
        ("chunk_rows", unmatched, rows, chunks, "chunks without a row number or row numbers without a chunk"),
    ):
        if bad:
            found.append(StatisticMismatch(name, int(stored), int(counted), f"{bad} {what}"))
    return found


def write_recount(conn) -> None:
    """Write the recount of ``stat_mismatches`` (postings rebuilt whole) and pack the postings lists
    again; the caller holds ``lock_writes``."""
    conn.execute(f"UPDATE chunks c SET tsv_len = ({_LEN_OF_TSV}) WHERE c.tsv_len <> ({_LEN_OF_TSV})")
    conn.execute("DELETE FROM chunk_rows r WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.chunk_id = r.chunk_id)")
    conn.execute(
        "INSERT INTO chunk_rows (chunk_id) SELECT chunk_id FROM chunks c "
        "WHERE NOT EXISTS (SELECT 1 FROM chunk_rows r WHERE r.chunk_id = c.chunk_id) ORDER BY chunk_id"
    )
    conn.execute(f"CREATE TEMP TABLE counted_postings ON COMMIT DROP AS {_POSTINGS_OF}")
    conn.execute("DELETE FROM postings")  # rare (check --repair): rebuilt whole, in this transaction
    conn.execute("INSERT INTO postings SELECT * FROM counted_postings ORDER BY 1, 2")
    conn.execute(f"CREATE TEMP TABLE counted ON COMMIT DROP AS WITH {_COUNTED_DF} SELECT * FROM counted")
    conn.execute("DELETE FROM lexeme_df d WHERE NOT EXISTS (SELECT 1 FROM counted c WHERE c.lexeme = d.lexeme)")
    conn.execute(
        "INSERT INTO lexeme_df SELECT lexeme, df FROM counted ORDER BY lexeme "
        "ON CONFLICT (lexeme) DO UPDATE SET df = EXCLUDED.df WHERE lexeme_df.df <> EXCLUDED.df"
    )
    conn.execute(
        "INSERT INTO corpus_stats SELECT TRUE, count(*), coalesce(sum(tsv_len), 0) FROM chunks "
        "ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n, total_len = EXCLUDED.total_len"
    )
    pg_packed.pack(conn)  # from the repaired postings (the caller holds the writers' lock)
