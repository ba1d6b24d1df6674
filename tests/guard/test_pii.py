from __future__ import annotations

import json
from pathlib import Path

from groundwork.guard.pii import find_pii, mask_pii

CASES = Path(__file__).resolve().parents[2] / "eval" / "pii_cases.jsonl"


def score(cases: list[dict]) -> tuple[float, float, dict[str, tuple[int, int, int]]]:
    tp = fp = fn = 0
    per: dict[str, list[int]] = {}
    for case in cases:
        gold = {(p["kind"], p["value"]) for p in case["pii"]}
        got = {(m.kind, m.text) for m in find_pii(case["text"])}
        for kind in {k for k, _ in gold | got}:
            g, f = {x for x in gold if x[0] == kind}, {x for x in got if x[0] == kind}
            row = per.setdefault(kind, [0, 0, 0])
            row[0] += len(g & f)
            row[1] += len(f - g)
            row[2] += len(g - f)
        tp, fp, fn = tp + len(gold & got), fp + len(got - gold), fn + len(gold - got)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), {k: tuple(v) for k, v in per.items()}


def test_pii_test_set_precision_and_recall() -> None:
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    kinds = {p["kind"] for c in cases for p in c["pii"]}
    assert kinds == {"CARD", "IBAN", "PHONE", "SSN", "EMAIL", "IP"}
    assert sum(1 for c in cases if not c["pii"]) >= 10  # invalid checksums and look-alikes
    precision, recall, per_kind = score(cases)
    assert precision == 1.0 and recall == 1.0, per_kind


def test_valid_numbers_are_masked_and_invalid_ones_left_alone() -> None:
    text = "Card 4111 1111 1111 1111, typo 4111 1111 1111 1112; IBAN GB82WEST12345698765432, bad GB83WEST12345698765432."
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
