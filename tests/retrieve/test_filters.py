from __future__ import annotations

import pytest

from groundwork.errors import FilterError
from groundwork.filters import And, Compare, In, IsNull, Not, Or, fields, parse_filter, to_sql


def test_parse_precedence_and_values() -> None:
    f = parse_filter("a = 'x' OR b >= 2.5 AND NOT c IN (1, 2)")
    assert f == Or((Compare("a", "=", "x"), And((Compare("b", ">=", 2.5), Not(In("c", (1, 2)))))))
    assert parse_filter("x IS NOT NULL") == IsNull("x", True)
    assert parse_filter("x not in ('a')") == In("x", ("a",), True)
    assert parse_filter("ok = true") == Compare("ok", "=", True)
    assert parse_filter("n <> -3") == Compare("n", "!=", -3)
    assert parse_filter("   ") is None
    assert fields(parse_filter("(a = 1 OR b = 2) AND c IS NULL")) == {"a", "b", "c"}


def test_sql_quotes_strings_safely() -> None:
    sql = to_sql(parse_filter("name = 'O''Brien; DROP TABLE x'"), lambda f: f"`{f}`")
    assert sql == "(`name` = 'O''Brien; DROP TABLE x')"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("category =", "expected a value"),
        ("category ~ 'a'", "unexpected character '~'"),
        ("(a = 1", r"expected '\)'"),
        ("a = 1 b = 2", "unexpected 'b'"),
        ("= 1", "expected a field name"),
        ("a IN 1", r"expected '\('"),
        ("a = 'unterminated", "unexpected character"),
    ],
)
def test_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(text)


# -- bounded work: a filter is checked by our grammar before any store sees it -------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NOT " * 40 + "a = 1", "nested deeper than"),  # made LanceDB's SQL parser run for minutes
        ("(" * 400 + "a = 1" + ")" * 400, "nested deeper than"),  # was a RecursionError -> HTTP 500
        ("NOT (" * 30 + "a = 1" + ")" * 30, "nested deeper than"),
        (" OR ".join(f"a = {i}" for i in range(40)), "more than 32 comparisons"),
        ("a IN (" + ", ".join(str(i) for i in range(101)) + ")", "more than 100 values"),
        ("a = '" + "x" * 2000 + "'", "longer than 2000 characters"),
    ],
)
def test_hostile_filters_are_refused_by_the_grammar(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(text)


def test_double_negation_collapses_and_the_limits_leave_room_for_real_filters() -> None:
    assert parse_filter("NOT NOT NOT a = 1") == Not(Compare("a", "=", 1))
    real = "(source IN ('BBC', 'CNN') OR category = 'sports') AND NOT (published_at < '2023-01-01' OR page IS NULL)"
    assert fields(parse_filter(real)) == {"source", "category", "published_at", "page"}


def test_a_filter_at_the_limits_runs_on_a_real_store(tmp_path) -> None:
    import numpy as np

    from groundwork.config import IndexSettings
    from groundwork.index.lance import LanceStore
    from groundwork.types import Chunk

    store = LanceStore(tmp_path / "kb", IndexSettings())
    store.check_model("m", 4)
    v = np.ones(4, np.float32) / 2
    store.replace_documents({"d": "h"}, [Chunk("d::0", "d", "d.md", 0, "hello world", "h", vector=v)], "p")
    deepest = "((" + "NOT (" * 3 + "doc_id = 'x'" + ")" * 5  # 8 levels: NOT NOT NOT = NOT
    assert [h.chunk.doc_id for h in store.vector_search(v, 5, parse_filter(deepest))] == ["d"]
