from __future__ import annotations

from pathlib import Path

from groundwork.answer.extractive import ABSTAIN_MESSAGE
from groundwork.evaluate.answers import segments
from tests.conftest import write


def build(make_kb, tmp_path: Path):
    docs = tmp_path / "docs"
    write(
        docs / "refunds.md",
        "# Refunds\n\nCustomers can request a full refund within 30 days of purchase. "
        "Refunds are paid back to the original payment card within five working days.\n",
    )
    write(
        docs / "security.md",
        "# Security\n\nAll data is encrypted at rest with AES-256. "
        "Access to production systems requires a hardware security key.\n",
    )
    write(
        docs / "office.md",
        "# Office\n\nThe Leeds office is open Monday to Friday from nine to five. "
        "Visitors must sign in at reception.\n",
    )
    kb = make_kb()
    kb.ingest([docs])
    return kb


def test_answer_quotes_and_cites_the_right_chunk(make_kb, tmp_path: Path) -> None:
    kb = build(make_kb, tmp_path)
    ans = kb.ask("How many days do customers have to request a refund?")
    assert not ans.abstained
    assert "within 30 days of purchase" in ans.answer
    by_n = {c.n: c for c in ans.citations}
    assert sorted(by_n) == list(range(1, len(by_n) + 1))  # renumbered 1..m, no gaps
    # the sentence about 30 days is followed by the number of the refunds chunk
    n_refund = next(n for n, c in by_n.items() if c.source.endswith("refunds.md"))
    assert f"within 30 days of purchase. [{n_refund}]" in ans.answer
    quoted = segments(ans.answer)
    assert quoted and all(ns for _, ns in quoted)  # every sentence carries a citation
    for sentence, ns in quoted:  # ... and is quoted verbatim from the chunk it cites
        assert all(sentence in " ".join(by_n[n].text.split()) for n in ns), sentence
    for c in ans.citations:
        assert Path(c.source).is_file()
    assert set(ans.timings_ms) == {"rewrite", "embed", "retrieve", "rerank", "assemble", "generate", "guard", "total"}


def test_abstains_when_documents_do_not_hold_the_answer(make_kb, tmp_path: Path) -> None:
    kb = build(make_kb, tmp_path)
    ans = kb.ask("What is the boiling point of liquid nitrogen?")
    assert ans.abstained and ans.answer == ABSTAIN_MESSAGE and ans.citations == []


def test_answer_respects_filter(make_kb, tmp_path: Path) -> None:
    kb = build(make_kb, tmp_path)
    src = str((tmp_path / "docs" / "office.md").resolve())
    ans = kb.ask("How is data encrypted?", filter=f"source = '{src}'")
    assert all(c.source == src for c in ans.citations)
