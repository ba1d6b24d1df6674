"""Latency in evaluation is a new question's: the timed search (or ask) embeds the question, even when
an earlier run left its vector in the shared eval cache (``eval compare --modes bm25,dense,hybrid``
used to time hybrid without a single query embedding). Real model, real index, the CLI in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from groundwork.index.embedder import SentenceTransformerEmbedder
from groundwork.kb import KnowledgeBase
from tests.conftest import SHARED_DATA, write
from tests.evaluate.test_eval_commands import QUESTIONS, eval_set, gw  # noqa: F401 - eval_set is a fixture

SCIFACT = SHARED_DATA / "scifact"


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """("search"|"ask", question, top_k) when a search or ask starts, ("end", ...) when it returns, and
    ("encode", texts) for each batch the model runs."""
    log: list[tuple] = []
    search, ask, encode = KnowledgeBase.search, KnowledgeBase.ask, SentenceTransformerEmbedder._model_encode
    grouped = KnowledgeBase.search_documents

    def logged(inner):  # a search of chunks or of documents (grouped): both are "search"
        def logged_search(self, query, mode=None, top_k=None, filter=None, access=None):  # noqa: A002
            log.append(("search", query, top_k))
            try:
                return inner(self, query, mode, top_k, filter, access)
            finally:
                log.append(("end", query, top_k))

        return logged_search

    def logged_ask(self, question, *args, **kwargs):
        log.append(("ask", question, None))
        try:
            return ask(self, question, *args, **kwargs)
        finally:
            log.append(("end", question, None))

    def logged_encode(self, texts):
        log.append(("encode", tuple(texts)))
        return encode(self, texts)

    monkeypatch.setattr(KnowledgeBase, "search", logged(search))
    monkeypatch.setattr(KnowledgeBase, "search_documents", logged(grouped))
    monkeypatch.setattr(KnowledgeBase, "ask", logged_ask)
    monkeypatch.setattr(SentenceTransformerEmbedder, "_model_encode", logged_encode)
    return log


def spans(log: list[tuple], kind: str, question: str, top_k: int | None) -> list[list[tuple]]:
    """The events inside each ``kind`` call for ``question``, in order."""
    out, i = [], 0
    while True:
        try:
            start = log.index((kind, question, top_k), i)
        except ValueError:
            return out
        end = log.index(("end", question, top_k), start)
        out.append(log[start + 1 : end])
        i = end + 1


def embedded(span: list[tuple], question: str) -> bool:
    return any(e[0] == "encode" and question in e[1] for e in span)


def check_hybrid_after_dense(args: list[str], questions: list[str], tmp_path: Path, events: list[tuple]) -> dict:
    cache = ["--cache", str(tmp_path / "cache")]
    assert gw("eval", "retrieval", *args, "--mode", "dense", *cache).exit_code == 0
    events.clear()  # every question's vector is now in the eval cache
    out = tmp_path / "hybrid.json"
    r = gw("eval", "retrieval", *args, "--mode", "hybrid", "--json", str(out), *cache)
    assert r.exit_code == 0, r.output
    for q in questions:
        timed, *again = spans(events, "search", q, 10)
        assert embedded(timed, q), f"the timed search did not embed {q!r}"
        assert len(again) == 1 and not embedded(again[0], q), "asked again, the question is served from the cache"
    return json.loads(out.read_text())


def test_hybrid_right_after_dense_is_timed_on_new_questions(eval_set: Path, tmp_path: Path, events) -> None:  # noqa: F811
    res = check_hybrid_after_dense(
        ["--eval-set", str(eval_set)], [q for q, _, src in QUESTIONS if src], tmp_path, events
    )
    assert res["latency_ms_p50"] > 0 and res["latency_cached_ms_p50"] > 0
    assert res["queries"] == 5 and res["hits@4"] == 1.0  # the figures themselves are unchanged


def test_bm25_reports_no_cached_figure(eval_set: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "bm25.json"
    r = gw("eval", "retrieval", "--eval-set", str(eval_set), "--mode", "bm25", "--json", str(out))
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert "latency_ms_p50" in res and "latency_cached_ms_p50" not in res  # bm25 never embeds the question


def test_answers_after_retrieval_are_timed_on_new_questions(eval_set: Path, tmp_path: Path, events) -> None:  # noqa: F811
    cache = ["--cache", str(tmp_path / "cache")]
    assert gw("eval", "retrieval", "--eval-set", str(eval_set), "--mode", "hybrid", *cache).exit_code == 0
    events.clear()
    r = gw("eval", "answers", "--eval-set", str(eval_set), "--no-bertscore", *cache)
    assert r.exit_code == 0, r.output
    for q, _, _ in QUESTIONS:
        [timed] = spans(events, "ask", q, None)
        assert embedded(timed, q), f"the timed ask did not embed {q!r}"


@pytest.mark.data
@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason=f"SciFact not found at {SCIFACT}")
def test_scifact_train_hybrid_right_after_dense(tmp_path: Path, events) -> None:
    """The issue's case on real data: a slice of SciFact (the first 8 judged train questions, their
    abstracts and 40 others)."""
    qrels = (SCIFACT / "qrels" / "train.tsv").read_text().splitlines()
    header, rows = qrels[0], [r.split("\t") for r in qrels[1:]]
    qids = list(dict.fromkeys(r[0] for r in rows))[:8]
    wanted = {r[1] for r in rows if r[0] in qids}
    corpus = [json.loads(x) for x in (SCIFACT / "corpus.jsonl").read_text().splitlines()]
    docs = [d for d in corpus if str(d["_id"]) in wanted] + [d for d in corpus if str(d["_id"]) not in wanted][:40]
    queries = [json.loads(x) for x in (SCIFACT / "queries.jsonl").read_text().splitlines()]
    questions = {str(q["_id"]): q for q in queries}
    root = tmp_path / "scifact"
    write(root / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    write(root / "queries.jsonl", "".join(json.dumps(questions[i]) + "\n" for i in qids))
    write(root / "qrels" / "train.tsv", "\n".join([header, *("\t".join(r) for r in rows if r[0] in qids)]) + "\n")
    args = ["--corpus", str(root / "corpus.jsonl"), "--queries", str(root / "queries.jsonl")]
    args += ["--qrels", str(root / "qrels" / "train.tsv")]
    res = check_hybrid_after_dense(args, [questions[i]["text"] for i in qids], tmp_path, events)
    assert res["queries"] == 8 and res["latency_ms_p50"] > 0 and res["latency_cached_ms_p50"] > 0
