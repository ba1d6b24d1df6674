"""Real data: a slice of the MultiHop-RAG corpus (skipped when ../shared/data is absent).

The full-corpus figures (609 articles, 705 dev queries) come from bench/multihop_search.py; this test
keeps CI honest on real news articles at a size that runs in well under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

MH = SHARED_DATA / "multihop-rag"
pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(not (MH / "corpus.json").is_file(), reason=f"MultiHop-RAG data not found at {MH}"),
]


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    corpus = json.loads((MH / "corpus.json").read_text())
    queries = [q for q in json.loads((MH / "queries-dev.json").read_text()) if q["question_type"] != "null_query"][:12]
    wanted = {e["url"] for q in queries for e in q["evidence_list"]}
    by_url = {a["url"]: a for a in corpus}
    distractors = [a for a in corpus if a["url"] not in wanted][:15]
    articles = [by_url[u] for u in sorted(wanted)] + distractors
    path = tmp_path_factory.mktemp("mh") / "corpus.json"
    path.write_text(json.dumps(articles))
    return path, queries


def test_real_articles_ingest_search_and_filter(subset, make_kb) -> None:
    path, queries = subset
    kb = make_kb()
    report = kb.ingest(
        [path], text_field="body", id_field="url", metadata_fields=["title", "source", "category", "published_at"]
    )
    n_articles = len(json.loads(path.read_text()))
    assert report.added == n_articles and not report.failed
    assert kb.count_chunks() > 3 * n_articles  # ~1,750-word articles make several chunks each
    assert all(kb.embedder.count_tokens(h.chunk.text) <= 200 for h in kb.search("the", mode="bm25", top_k=50))

    found = 0
    for q in queries:
        gold = {e["url"] for e in q["evidence_list"]}
        found += bool(gold & {h.chunk.doc_id for h in kb.search(q["query"], top_k=10)})
    assert found / len(queries) >= 0.8

    hits = kb.search("latest results", top_k=5, filter="category = 'sports' AND published_at >= '2023-10-01'")
    assert len(hits) == 5
    assert all(
        h.chunk.metadata["category"] == "sports" and h.chunk.metadata["published_at"] >= "2023-10-01" for h in hits
    )
