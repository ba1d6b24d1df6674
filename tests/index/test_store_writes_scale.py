"""A write costs the batch, not the table: what each store reads and writes for one batch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from groundwork.config import IndexSettings
from groundwork.index.lance import LanceStore
from groundwork.index.lance_storage import latest
from groundwork.index.postgres import PgStore
from tests.index.test_lance_writes import base_index, chunks_of


def rows_scanned(plan: str) -> float:
    """The rows Lance read from data files: the ``LanceRead`` metric of ``analyze_plan`` ("1.00 K")."""
    scale = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9}
    return sum(float(n) * scale[unit] for n, unit in re.findall(r"rows_scanned=([\d.]+) ?([KMB]?)", plan))


@pytest.mark.slow  # builds a 1,000-chunk index with its full-text index (14 s at load average 8)
def test_a_lance_write_finds_its_documents_through_the_doc_id_index(tmp_path: Path) -> None:
    """Finding the old chunks of a batch's documents reads the ``doc_id`` B-tree and the matching
    rows, plus the rows written since the last optimize; not the table (which made every write
    cost grow with the index)."""
    store = LanceStore(tmp_path / "kb", IndexSettings())
    store.check_model("m", 384)
    base_index(store, docs=200)  # 1,000 indexed rows
    store.replace_documents({"new": "h"}, chunks_of("new", ["n0", "n1"], seed=5), "p")  # 2 unindexed rows

    plan = store._rows_of(latest(store._chunks), ["base/7", "new", "absent"]).analyze_plan()

    assert "ScalarIndexQuery" in plan
    assert rows_scanned(plan) <= 5 + 2, plan  # base/7's 5 chunks and the unindexed tail
    assert store._rows_of(latest(store._chunks), ["base/7", "new"]).to_table().num_rows == 7


def test_a_postgres_write_stores_each_row_once(pg_dsn: str, pg_schema: str) -> None:
    """A batch's rows are inserted with their BM25 length: one row version each. The UPDATE that set
    the length after the COPY wrote every row a second time (and, once pages were full, a second
    entry in every index, the HNSW graph included)."""
    store = PgStore.connect(pg_dsn, 384, IndexSettings(), schema=pg_schema, pool_size=2)
    try:
        store.check_model("m", 384)
        texts = ["pumps are checked weekly", "valves every two years", "the canteen opens at noon"]
        store.replace_documents({"a": "h1"}, chunks_of("a", texts, seed=1), "p")
        ctids = [r[0] for r in store._query("SELECT ctid::text FROM chunks ORDER BY ctid")]
        assert ctids == ["(0,1)", "(0,2)", "(0,3)"]  # no dead version before them
        assert all(n > 0 for (n,) in store._query("SELECT tsv_len FROM chunks"))

        store.replace_documents({"a": "h2"}, chunks_of("a", ["pumps are checked daily"], seed=2), "p")
        assert store.recount_statistics() == []  # lengths, document frequencies and N stay exact
        assert [h.chunk.text for h in store.keyword_search("pumps daily", 5)] == ["pumps are checked daily"]
    finally:
        store.close()
