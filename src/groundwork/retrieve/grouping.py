"""Grouping ranked chunks by document ("field collapsing", as Elasticsearch's ``collapse`` and Vespa's
grouping do): one place per document, with its best chunks as passages.

A document's score is its best chunk's score (``max``: the MaxP aggregation of Dai & Callan 2019,
"Deeper text understanding for IR with contextual neural language modeling", SIGIR), or the sum of
its best two chunks' scores (``sum2``, a SumP cut at two). Ties go to the document whose best chunk
ranks higher, so grouping never reorders documents that the chunk ranking already orders.
"""

from __future__ import annotations

from collections.abc import Sequence

from groundwork.types import DocumentHit, SearchHit

SCORES = ("max", "sum2")


def group_by_document(
    hits: Sequence[SearchHit], top_k: int, passages: int = 3, score: str = "max"
) -> list[DocumentHit]:
    """``hits`` best first -> at most ``top_k`` documents best first, ranks renumbered from 1.

    Each document keeps its first ``passages`` hits (in the order given) and counts all of them in
    ``matched``. Raises ValueError for an unknown ``score`` (settings validate it first)."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, not {score!r}")
    by_doc: dict[str, list[SearchHit]] = {}
    for h in hits:
        by_doc.setdefault(h.chunk.doc_id, []).append(h)
    take = 1 if score == "max" else 2
    # dicts keep insertion order: a document's position is that of its best chunk, the tie-breaker
    order = sorted(enumerate(by_doc.values()), key=lambda item: (-sum(h.score for h in item[1][:take]), item[0]))
    out = []
    for rank, (_, doc_hits) in enumerate(order[:top_k], 1):
        best = doc_hits[0].chunk
        out.append(
            DocumentHit(
                doc_id=best.doc_id,
                source=best.source,
                title=best.title,
                score=sum(h.score for h in doc_hits[:take]),
                rank=rank,
                passages=list(doc_hits[:passages]),
                matched=len(doc_hits),
                relevance=doc_hits[0].relevance,
            )
        )
    return out
