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
