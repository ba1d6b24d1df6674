"""The rough edges a new user hit, each fixed and kept fixed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from groundwork.cli import app
from tests.conftest import make_pdf, write

runner = CliRunner()


def gw(*args: str):
    return runner.invoke(app, list(args))


def test_help_shows_the_citation_marker_and_defaults() -> None:
    r = gw("ask", "--help")
    assert "citing the chunks used as [n]" in r.output
    assert "[default: hybrid]" in gw("search", "--help").output


def test_citations_name_the_page_and_the_record(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    make_pdf(
        docs / "incident-response.pdf",
        ["Cover page.", "Report a security incident to the duty officer within one hour."],
    )
    write(docs / "faq.jsonl", '{"id": "vpn-1", "question": "VPN", "text": "The VPN needs the blue hardware token."}\n')
    kb = str(tmp_path / "kb")
    assert gw("--kb", kb, "ingest", str(docs), "--id-field", "id").exit_code == 0
    r = gw("--kb", kb, "ask", "How soon must I report a security incident?", "--no-stream")
    assert "incident-response.pdf, p. 2" in r.output, r.output
    r = gw("--kb", kb, "ask", "What does the VPN need?", "--no-stream")
    assert "faq.jsonl #vpn-1" in r.output, r.output


def test_a_records_file_remembers_its_options(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "faq.jsonl", '{"key": "a1", "body": "Lunch is served at noon.", "team": "ops"}\n')
    kb = str(tmp_path / "kb")
    first = gw(
        "--kb",
        kb,
        "ingest",
        str(docs),
        "--text-field",
        "body",
        "--id-field",
        "key",
        "--metadata-fields",
        "team",
        "--json",
    )
    assert json.loads(first.output)["added"] == 1
    again = gw("--kb", kb, "ingest", str(docs), "--json")  # no options: the ones of the last run
    assert again.exit_code == 0 and json.loads(again.output)["unchanged"] == 1, again.output
    hits = json.loads(gw("--kb", kb, "search", "lunch", "--filter", "team = 'ops'", "--json").output)
    assert [h["doc_id"] for h in hits] == ["a1"]


def test_a_mistyped_kb_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kb"
    for cmd in ("documents", "versions", "search"):
        r = gw("--kb", str(missing), cmd, *(["x"] if cmd == "search" else []))
        assert r.exit_code == 2 and "no knowledge base at" in r.output, (cmd, r.output)
    assert not missing.exists()


def test_a_too_long_question_is_a_clear_error_not_a_policy_refusal(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.md", "# A\n\nLunch is at noon.\n")
    kb = str(tmp_path / "kb")
    assert gw("--kb", kb, "ingest", str(docs)).exit_code == 0
    r = gw("--kb", kb, "ask", "why " * 1500)
    assert r.exit_code == 2 and "the limit is 4000 (guard.max_question_chars)" in r.output
    assert "I can't help" not in r.output


def test_an_unknown_setting_suggests_the_known_one(tmp_path: Path) -> None:
    cfg = write(tmp_path / "g.toml", "[retrieval]\ntopk = 3\n")
    r = gw("--config", str(cfg), "config", "show")
    assert r.exit_code == 2 and "did you mean retrieval.top_k?" in r.output


def test_relevance_means_the_same_across_queries(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.md", "# Parking\n\nVisitors park in the north car park behind the building.\n")
    write(docs / "b.md", "# Lunch\n\nThe canteen serves lunch between noon and two.\n")
    kb = str(tmp_path / "kb")
    assert gw("--kb", kb, "ingest", str(docs)).exit_code == 0
    good = json.loads(gw("--kb", kb, "search", "where do visitors park", "--json").output)[0]
    bad = json.loads(gw("--kb", kb, "search", "quantum chromodynamics of gluons", "--json").output)[0]
    assert good["score"] == 1.0  # the fused score is relative to its query ...
    assert good["relevance"] > 0.5 > bad["relevance"]  # ... the relevance is not


def test_pdf_warnings_are_part_of_the_files_reason_not_printed_before_the_summary(tmp_path: Path) -> None:
    import subprocess

    from tests.serve.server import GW

    docs = tmp_path / "docs"
    write(docs / "broken.pdf", b"not a pdf at all")
    write(docs / "ok.md", "# Ok\n\nA readable file.\n")
    out = subprocess.run([GW, "--kb", str(tmp_path / "kb"), "ingest", str(docs)], capture_output=True, text=True)
    assert out.returncode == 1
    lines = (out.stderr + out.stdout).splitlines()
    assert not [ln for ln in lines if ln.startswith(("invalid pdf header", "EOF marker"))]  # no raw warnings
    [failed] = [ln for ln in lines if "broken.pdf" in ln]
    assert "not a readable PDF" in failed and "pypdf: invalid pdf header" in failed
