from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from groundwork.cli import app
from tests.conftest import write

runner = CliRunner()


def gw(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def setup_docs(root: Path) -> Path:
    write(root / "a.md", "# Parking\n\nVisitors may park for free in the north car park behind the building.\n")
    write(root / "b.md", "# Lunch\n\nThe canteen serves lunch between noon and two in the afternoon.\n")
    return root


def test_ingest_search_ask_json(tmp_path: Path) -> None:
    docs = setup_docs(tmp_path / "docs")
    kb = str(tmp_path / "kb")
    r = gw("--kb", kb, "ingest", str(docs), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["added"] == 2

    r = gw("--kb", kb, "search", "where can visitors park", "--json", "--top-k", "1")
    [hit] = json.loads(r.output)
    assert hit["source"].endswith("a.md") and hit["rank"] == 1 and {"bm25", "dense"} <= set(hit["scores"])

    r = gw("--kb", kb, "ask", "Where can visitors park?", "--json")
    ans = json.loads(r.output)
    assert {
        "answer_id",
        "answer",
        "abstained",
        "blocked",
        "citations",
        "guardrails",
        "model_id",
        "index_version",
    } <= set(ans)
    assert len(ans["answer_id"]) == 32 and ans["index_version"] == 1 and ans["model_id"].startswith("extractive:")
    assert ans["abstained"] is False and "north car park" in ans["answer"]
    c = ans["citations"][0]
    assert {"n", "doc_id", "chunk_id", "source", "score", "text", "heading", "page"} <= set(c) and f"[{c['n']}]" in ans[
        "answer"
    ]
    assert {"embed", "retrieve", "generate", "guard", "total"} <= set(ans["timings_ms"])

    r = gw("--kb", kb, "ask", "Where can visitors park?")
    assert "north car park" in r.output and "a.md" in r.output

    r = gw("--kb", kb, "versions", "--json")
    assert [v["added"] for v in json.loads(r.output)] == [2]


def test_exit_codes(tmp_path: Path) -> None:
    docs = setup_docs(tmp_path / "docs")
    write(docs / "bad.txt", b"\xff\xfe\x00\x00binary")
    kb = str(tmp_path / "kb")
    r = gw("--kb", kb, "ingest", str(docs))
    assert r.exit_code == 1
    assert "bad.txt" in r.output and "failed" in r.output
    r = gw("--kb", kb, "search", "x", "--filter", "nope = 1")
    assert r.exit_code == 2 and "unknown field 'nope'" in r.output
    r = gw("--kb", str(tmp_path / "empty"), "search", "x")
    assert r.exit_code == 2 and "groundwork ingest" in r.output
    r = gw("--kb", kb, "search", "x", "--mode", "magic")
    assert r.exit_code == 2 and "mode must be one of" in r.output
    r = gw("--kb", kb, "ask", "   ")
    assert r.exit_code == 2 and "query is empty" in r.output


def test_config_show_reflects_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GROUNDWORK_ANSWER__TOP_K", "9")
    r = gw("config", "show")
    assert json.loads(r.output)["answer"]["top_k"] == 9
    monkeypatch.setenv("GROUNDWORK_ANSWER__TOP_K", "0")
    r = gw("config", "show")
    assert r.exit_code == 2 and "answer.top_k" in r.output


def test_kb_after_the_command_name_is_the_same_as_before_it(tmp_path: Path) -> None:
    docs = setup_docs(tmp_path / "docs")
    kb = str(tmp_path / "kb")
    assert gw("ingest", str(docs), "--kb", kb).exit_code == 0
    before = json.loads(gw("--kb", kb, "search", "lunch", "--json").output)
    after = json.loads(gw("search", "lunch", "--json", "--kb", kb).output)
    assert before == after and after[0]["source"].endswith("b.md")
    versions = json.loads(gw("versions", "--json", "--kb", kb).output)
    assert [v["version"] for v in versions] == [1]
    # the command's own --kb wins over the global one
    other = json.loads(gw("--kb", str(tmp_path / "elsewhere"), "documents", "--json", "--kb", kb).output)
    assert len(other) == 2


def test_a_bad_config_file_fails_every_command(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", "[retrieval]\nmode = 'telepathy'\n")
    corpus = write(tmp_path / "c.jsonl", '{"_id": "d1", "title": "", "text": "Lunch is at noon."}\n')
    queries = write(tmp_path / "q.jsonl", '{"_id": "q1", "text": "when is lunch"}\n')
    qrels = write(tmp_path / "qrels.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    beir = ["--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels), "--cache", str(tmp_path / "c")]
    for args in (
        ["--config", str(bad), "eval", "retrieval", *beir],
        ["eval", "retrieval", *beir, "--config", str(bad)],
        ["--config", str(bad), "search", "lunch"],
        ["--config", str(bad), "versions"],
        ["--config", str(bad), "keys", "list"],
        ["--config", str(tmp_path / "missing.toml"), "eval", "answers", *beir[:-2]],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert "retrieval.mode" in r.output or "does not exist" in r.output, r.output


def test_search_grouped_by_document(tmp_path: Path, monkeypatch) -> None:
    docs = setup_docs(tmp_path / "docs")
    days = " ".join(f"On day {i} visitors parked in the north car park and paid nothing." for i in range(12))
    write(docs / "c.md", f"# Parking log\n\n{days}\n")
    kb = str(tmp_path / "kb")
    monkeypatch.setenv("GROUNDWORK_CHUNKING__OVERLAP_TOKENS", "0")
    chunking = ["--chunker", "fixed", "--chunk-tokens", "32"]
    assert gw("--kb", kb, "ingest", str(docs), *chunking).exit_code == 0
    chunks = json.loads(gw("--kb", kb, "search", "where can visitors park", "--json", "--top-k", "3").output)
    assert [Path(h["source"]).name for h in chunks].count("c.md") >= 2  # the log takes most places

    r = gw("--kb", kb, "search", "where can visitors park", "--group-by", "document", "--json", "--top-k", "3")
    grouped = json.loads(r.output)
    assert sorted(Path(d["source"]).name for d in grouped) == ["a.md", "b.md", "c.md"]
    log = next(d for d in grouped if d["source"].endswith("c.md"))
    assert len(log["passages"]) == 3 and log["matched"] > 3
    assert {"chunk_id", "text", "score", "rank"} <= set(log["passages"][0])
    assert [d["rank"] for d in grouped] == [1, 2, 3]

    table = gw("--kb", kb, "search", "where can visitors park", "--group-by", "document", "--top-k", "3").output
    assert "more matching chunks" in table and "a.md" in table

    monkeypatch.setenv("GROUNDWORK_RETRIEVAL__GROUP_BY", "document")  # the setting is the default
    by_setting = json.loads(gw("--kb", kb, "search", "where can visitors park", "--json", "--top-k", "3").output)
    assert by_setting == grouped
    r = gw("--kb", kb, "search", "x", "--group-by", "page")
    assert r.exit_code == 2 and "retrieval.group_by" in r.output
