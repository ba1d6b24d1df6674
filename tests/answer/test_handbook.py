"""Extractive answers on the handbook in eval/handbook (Markdown with a per-diem table, a DOCX with a
table, a PDF, a JSONL FAQ): table rows are answer units, two-part questions get one supporting unit
per part, a unit that repeats the question without the asked value does not answer it."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundwork.answer.units import Unit, asks_for_value, new_values, table_rows
from groundwork.config import load_settings
from groundwork.kb import KnowledgeBase

HANDBOOK = Path(__file__).resolve().parents[2] / "eval" / "handbook"
kb_tests = pytest.mark.slow  # one ingested handbook for the module, then a question per test


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    kb = KnowledgeBase(settings=load_settings(kb=tmp_path_factory.mktemp("handbook") / "kb"))
    report = kb.ingest([HANDBOOK])
    assert not report.failed
    return kb


def _sources(ans) -> set[str]:
    return {Path(c.source).name for c in ans.citations}


@kb_tests
def test_a_table_row_answers_a_question_about_that_row(kb: KnowledgeBase) -> None:
    us = kb.ask("per diem for the US")
    assert not us.abstained
    assert us.answer == "Country: United States; Per diem: 79; Currency: USD [1]"  # the row, not the table
    assert _sources(us) == {"travel.md"}
    japan = kb.ask("per diem in Japan")
    assert not japan.abstained and "Country: Japan; Per diem: 12,000; Currency: JPY" in japan.answer
    assert "United States" not in japan.answer


@kb_tests
def test_a_docx_table_row_is_an_answer_unit(kb: KnowledgeBase) -> None:
    ans = kb.ask("What is the allowance for an office chair?")
    assert "Item: Office chair; Allowance: 200 EUR" in ans.answer
    assert _sources(ans) == {"remote-work.docx"}


@kb_tests
def test_the_sentence_that_answers_is_quoted_not_abstained(kb: KnowledgeBase) -> None:
    ans = kb.ask("What must I do before accessing internal systems from home?")
    assert not ans.abstained
    assert "connect through the company VPN" in ans.answer
    assert _sources(ans) == {"security.pdf"}


@kb_tests
def test_repeating_the_question_without_the_asked_value_abstains(kb: KnowledgeBase) -> None:
    ans = kb.ask("Mileage rate after the first 10,000 miles")
    assert ans.abstained, ans.answer  # the "first 10,000 miles" sentence holds no rate


@kb_tests
def test_a_two_part_question_gets_one_supporting_sentence_per_part(kb: KnowledgeBase) -> None:
    ans = kb.ask("how many remote days, and how do I connect?")
    assert not ans.abstained
    assert "three days per week" in ans.answer  # part 1
    assert "VPN" in ans.answer  # part 2
    # each part is cited
    assert len(ans.citations) >= 2 or ans.answer.count("[1]") >= 2


def test_value_questions_and_values() -> None:
    assert asks_for_value("Mileage rate after the first 10,000 miles")
    assert asks_for_value("how many remote days")
    assert not asks_for_value("Does the rate change after 10,000 miles?")  # yes/no
    assert not asks_for_value("Who approves expense claims?")
    assert new_values("the standard rate for the first 10,000 miles", "rate after the first 10,000 miles") == set()
    assert new_values("up to three days per week", "how many remote days") == {"three"}
    assert new_values("0.67 per mile", "mileage rate") == {"0.67"}


def test_table_rows_pair_header_and_cells() -> None:
    md = ["| Country | Per diem |", "| --- | --- |", "| Japan | 12,000 |", "| | |"]
    assert table_rows(md) == ["Country: Japan; Per diem: 12,000"]
    assert table_rows(["Item | Allowance", "Monitor | 150 EUR"]) == ["Item: Monitor; Allowance: 150 EUR"]
    assert table_rows(["| only a header |"]) == []
    assert Unit(1, 0, "x").table_row is False


def test_a_quoted_table_row_counts_as_faithful() -> None:
    from groundwork.evaluate.answers import _row_in

    table = "| Country | Per diem |\n| --- | --- |\n| Japan | 12,000 |"
    assert _row_in("Country: Japan; Per diem: 12,000", [table])
    assert not _row_in("Country: Japan; Per diem: 13,000", [table])
