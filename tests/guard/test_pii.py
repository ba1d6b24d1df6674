from __future__ import annotations

import json
from pathlib import Path

from groundwork.guard.pii import find_pii, mask_pii, score_cases

CASES = Path(__file__).resolve().parents[2] / "eval" / "pii_cases.jsonl"


def test_pii_test_set_precision_and_recall() -> None:
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    kinds = {p["kind"] for c in cases for p in c["pii"]}
    assert kinds == {"CARD", "IBAN", "PHONE", "SSN", "EMAIL", "IP"}
    assert sum(1 for c in cases if not c["pii"]) >= 10  # invalid checksums and look-alikes
    scores = score_cases(cases)
    assert scores["all"]["precision"] == 1.0 and scores["all"]["recall"] == 1.0, scores
    assert scores["all"]["tp"] == sum(len(c["pii"]) for c in cases)


def test_valid_numbers_are_masked_and_invalid_ones_left_alone() -> None:
    text = (
        "Card 4111 1111 1111 1111, typo 4111 1111 1111 1112; IBAN GB82WEST12345698765432, bad GB83WEST12345698765432."
    )
    masked = mask_pii(text)
    assert masked == "Card [CARD], typo 4111 1111 1111 1112; IBAN [IBAN], bad GB83WEST12345698765432."


def test_phone_region_and_loopback() -> None:
    assert [m.kind for m in find_pii("Ring 020 7946 0958 today", region="GB")] == ["PHONE"]
    assert find_pii("Ring 020 7946 0958 today", region="US") == []  # not a valid US number
    assert find_pii("Serve on 127.0.0.1:8080 or ::1") == []  # loopback identifies no one


def test_pii_masked_at_ingest_never_reaches_the_index(make_kb, tmp_path: Path) -> None:
    from tests.conftest import write

    write(tmp_path / "d" / "hr.md", "# HR\n\nPayroll questions go to payroll.team@example.com or +44 20 7946 0958.\n")
    kb = make_kb(**{"guard.pii_at_ingest": True, "guard.pii_region": "GB"})
    kb.ingest([tmp_path / "d"])
    [hit] = kb.search("payroll questions", top_k=1)
    assert "[EMAIL]" in hit.chunk.text and "[PHONE]" in hit.chunk.text and "example.com" not in hit.chunk.text
    assert kb.search("payroll.team@example.com", mode="bm25", top_k=5)[0].chunk.text.count("example.com") == 0
    plain = make_kb(str(kb.path.name), **{"guard.pii_at_ingest": False})  # same folder, setting off: re-processed
    report = plain.ingest([tmp_path / "d"])
    assert report.updated == 1 and "example.com" in plain.search("payroll questions", top_k=1)[0].chunk.text
