from __future__ import annotations

import json
from pathlib import Path

import pytest

from groundwork.evaluate.datasets import DatasetError, load_beir, load_eval_set, load_multihop, read_qrels
from tests.conftest import write


def test_qrels_with_header_and_crlf(tmp_path: Path) -> None:
    p = write(tmp_path / "train.tsv", b"query-id\tcorpus-id\tscore\r\n1\tA\t1\r\n1\tB\t2\r\n\r\n2\tC\t1\r\n")
    assert read_qrels(p) == {"1": {"A": 1, "B": 2}, "2": {"C": 1}}
    bad = write(tmp_path / "bad.tsv", "query-id\tcorpus-id\tscore\n1\tA\n")
    with pytest.raises(DatasetError, match="line 2"):
        read_qrels(bad)


def test_beir_keeps_judged_queries(tmp_path: Path) -> None:
    corpus = write(tmp_path / "corpus.jsonl", json.dumps({"_id": "A", "title": "t", "text": "x"}) + "\n")
    queries = write(
        tmp_path / "queries.jsonl", "\n".join(json.dumps({"_id": str(i), "text": f"q{i}"}) for i in range(3))
    )
    qrels = write(tmp_path / "q.tsv", "query-id\tcorpus-id\tscore\n1\tA\t1\n")
    ds = load_beir(corpus, queries, qrels)
    assert [q.qid for q in ds.queries] == ["1"] and ds.queries[0].qrels == {"A": 1}
    assert ds.records.text_field == "text" and ds.records.id_field == "_id"


def test_multihop_and_null_queries(tmp_path: Path) -> None:
    q = [
        {
            "query": "a?",
            "answer": "X",
            "question_type": "comparison_query",
            "evidence_list": [{"url": "u1", "fact": "f1"}],
        },
        {"query": "b?", "answer": "Insufficient information.", "question_type": "null_query", "evidence_list": []},
    ]
    ds = load_multihop(write(tmp_path / "c.json", "[]"), write(tmp_path / "q.json", json.dumps(q)))
    assert ds.queries[0].facts == ["f1"] and ds.queries[0].qrels == {"u1": 1}
    assert not ds.queries[1].answerable


def test_eval_set_resolves_sources_against_corpus(tmp_path: Path) -> None:
    write(tmp_path / "docs" / "a.md", "# A\n\ntext")
    es = write(
        tmp_path / "eval" / "set.jsonl",
        '{"corpus": "../docs"}\n{"question": "q?", "answer": "x", "sources": ["a.md"]}\n',
    )
    ds = load_eval_set(es)
    assert list(ds.queries[0].qrels) == [str((tmp_path / "docs" / "a.md").resolve())]
    with pytest.raises(DatasetError, match="no corpus"):
        load_eval_set(write(tmp_path / "plain.jsonl", '{"question": "q?"}\n'))
