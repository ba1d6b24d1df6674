from __future__ import annotations

import pytest

from groundwork.answer.citations import CitationStreamFilter, check_citations, cited_numbers, renumber
from groundwork.errors import ConfigError
from groundwork.llm.prompts import load_prompt


def test_check_citations_removes_and_counts_invalid_markers() -> None:
    text, removed = check_citations("A [1]. B [7]. C [1, 2]. D [2; 9].", {1, 2})
    assert text == "A [1]. B. C [1][2]. D [2]." and removed == 2
    assert cited_numbers(text) == [1, 2]
    assert check_citations("No markers.", {1}) == ("No markers.", 0)


@pytest.mark.parametrize(
    "pieces",
    [
        ["Park north [1", "] and [", "9] garage [2]."],
        ["Park north [", "1] and [9", "] garage [2", "]."],
        ["Park north [1] and [9] garage [2]."],
        list("Park north [1] and [9] garage [2]."),
    ],
)
def test_stream_filter_matches_the_batch_check(pieces: list[str]) -> None:
    f = CitationStreamFilter({1, 2})
    shown = "".join(f.feed(p) for p in pieces) + f.flush()
    assert shown == "Park north [1] and  garage [2]." and f.removed == 1
    assert check_citations("".join(pieces), {1, 2})[0] == "Park north [1] and garage [2]."


def test_stream_filter_passes_brackets_that_are_not_markers() -> None:
    f = CitationStreamFilter({1})
    assert f.feed("array[]") + f.feed(" [x] [12345] [1]") + f.flush() == "array[] [x] [12345] [1]"


def test_renumber_in_order_of_first_use() -> None:
    assert renumber("b [3] a [1] b [3]", {1, 3}) == ("b [1] a [2] b [1]", {3: 1, 1: 2})


def test_prompt_templates_are_versioned_files() -> None:
    t = load_prompt("grounded-answer")
    assert t.id == "grounded-answer" and t.version >= 1 and len(t.sha256) == 64
    assert t.ref == f"grounded-answer@{t.version}#{t.sha256[:12]}"
    msgs = t.render(context='[1] a.md\n"""\ntext\n"""', question="Q?")
    assert msgs[0]["role"] == "system" and "[n]" in msgs[0]["content"] and "Q?" in msgs[1]["content"]
    with pytest.raises(ConfigError, match=r"\$question"):
        t.render(context="x")
    with pytest.raises(ConfigError, match="known templates"):
        load_prompt("no-such-template")
