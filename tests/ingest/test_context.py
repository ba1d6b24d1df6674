"""Record metadata as context lines of every chunk's indexed text (ingest.metadata_context)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groundwork.config import Settings
from groundwork.ingest.context import context_lines
from groundwork.kb import KnowledgeBase


def test_context_lines_render_dates_lists_and_leave_out_what_they_must() -> None:
    meta = {
        "title": "Cyber Monday deals",
        "source": "Mashable",
        "published_at": "2023-11-27T08:45:59+00:00",
        "tags": ["deals", "", "amazon"],
        "empty": "",
        "tenant": "acme",
        "note": "  two\n words  ",
        "day": "2023-02-30",  # not a date: kept as written
    }
    assert context_lines(meta, skip_fields=["tenant"], skip_value="Cyber Monday deals").splitlines() == [
        "source: Mashable",
        "published_at: November 27, 2023",
        "tags: deals, amazon",
        "note: two words",
        "day: 2023-02-30",
    ]
    assert context_lines({"x": "y" * 500}) == "x: " + "y" * 200


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("records") / "news.jsonl"
    rows = [
        {
            "id": "1",
            "title": "Deals",
            "body": "Prices on laptops fell this week.",
            "source": "Mashable",
            "team": "sales",
            "published_at": "2023-11-27",
        },
        {
            "id": "2",
            "title": "Scores  of the final",
            "body": "The home side won the final.",
            "source": "Sporting News",
            "team": "sales",
            "published_at": "2023-10-04",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def _kb(tmp: Path, records: Path, **ingest) -> KnowledgeBase:
    settings = Settings(
        kb=tmp / "kb",
        ingest={
            "id_field": "id",
            "metadata_fields": ["title", "source", "team", "published_at"],
            "text_field": "body",
            "acl_groups_field": "team",
            **ingest,
        },
    )
    kb = KnowledgeBase(settings=settings)
    assert not kb.ingest([records]).failed
    return kb


def test_a_question_naming_the_publisher_and_date_finds_the_record(tmp_path: Path, records: Path) -> None:
    kb = _kb(tmp_path, records)
    hits = kb.search("What did Sporting News report on October 4, 2023?", top_k=1, mode="bm25")
    assert hits[0].chunk.doc_id.endswith("2")
    chunk = hits[0].chunk
    assert chunk.text == "The home side won the final."  # what is shown and quoted is the text alone
    lines = chunk.search_text.splitlines()
    assert lines[:3] == ["Scores  of the final", "source: Sporting News", "published_at: October 4, 2023"]
    assert not any(ln.startswith("title:") for ln in lines)  # the title field is the head line, not a context line
    assert "team" not in chunk.search_text  # the access-control field is never indexed text


def test_turning_context_off_reindexes_the_records_without_it(tmp_path: Path, records: Path) -> None:
    _kb(tmp_path, records)
    kb = _kb(tmp_path, records, metadata_context=False)  # same folder: a sync
    assert kb.search("Sporting News", top_k=5, mode="bm25") == []
    assert all("source:" not in h.chunk.search_text for h in kb.search("final laptops", top_k=5, mode="bm25"))
