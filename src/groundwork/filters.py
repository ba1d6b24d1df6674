"""Metadata filter expressions: parsed and validated before use, compiled by each store to its own SQL.

Grammar (keywords case-insensitive)::

    expr     := term ("OR" term)*
    term     := factor ("AND" factor)*
    factor   := "NOT" factor | "(" expr ")" | field op value
              | field ["NOT"] "IN" "(" value ("," value)* ")" | field "IS" ["NOT"] "NULL"
    op       := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    value    := 'single-quoted string' ('' escapes a quote) | number | TRUE | FALSE

Examples: ``category = 'sports'``, ``source IN ('BBC', 'CNN') AND published_at >= '2023-10-01'``.
Dates are compared as ISO-8601 strings, which order correctly when written in the same form.

Limits, checked while parsing and before anything reaches a store (a store's own SQL parser can take
time exponential in the nesting: LanceDB's took minutes for 40 nested NOTs): at most ``MAX_CHARS``
characters, ``MAX_DEPTH`` levels of nesting (each NOT and each parenthesis is one), ``MAX_TERMS``
comparisons and ``MAX_VALUES`` values in one IN list. ``NOT NOT x`` is read as ``x``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from groundwork.errors import FilterError

Value = str | int | float | bool


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Value


@dataclass(frozen=True)
class In:
    field: str
    values: tuple[Value, ...]
    negate: bool = False


@dataclass(frozen=True)
class IsNull:
    field: str
    negate: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


Filter = Compare | In | IsNull | And | Or | Not

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<op><=|>=|!=|<>|=|<|>)"
    r"|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"}
MAX_CHARS = 2000
MAX_DEPTH = 8
MAX_TERMS = 32
MAX_VALUES = 100


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            at = len(text) - len(text[pos:].lstrip())
            raise FilterError(f"filter: unexpected character {text[at]!r} at position {at} in: {text}")
        kind = m.lastgroup or ""
        value, start = m.group(kind), m.start(kind)
        if kind == "word" and value.upper() in _KEYWORDS:
            kind, value = "kw", value.upper()
        tokens.append((kind, value, start))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_CHARS:
            raise FilterError(f"filter: longer than {MAX_CHARS} characters; simplify it")
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"filter: nested deeper than {MAX_DEPTH} levels (NOT and parentheses); simplify it")

    def _term(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterError(f"filter: more than {MAX_TERMS} comparisons; use IN (...) or simplify it")

    def peek(self, kind: str | None = None, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        k, v, _ = self.tokens[self.i]
        return (kind is None or k == kind) and (value is None or v == value)

    def take(self, kind: str, value: str | None = None, what: str = "") -> str:
        if not self.peek(kind, value):
            found = (
                f"'{self.tokens[self.i][1]}' at position {self.tokens[self.i][2]}"
                if self.i < len(self.tokens)
                else "the end"
            )
            raise FilterError(f"filter: expected {what or value or kind} but found {found} in: {self.text}")
        self.i += 1
        return self.tokens[self.i - 1][1]

    def parse(self) -> Filter:
        if not self.tokens:
            raise FilterError("filter: empty expression")
        node = self.expr()
        if self.i < len(self.tokens):
            raise FilterError(
                f"filter: unexpected '{self.tokens[self.i][1]}' at position {self.tokens[self.i][2]} in: {self.text}"
            )
        return node

    def expr(self) -> Filter:
        items = [self.term()]
        while self.peek("kw", "OR"):
            self.i += 1
            items.append(self.term())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self) -> Filter:
        items = [self.factor()]
        while self.peek("kw", "AND"):
            self.i += 1
            items.append(self.factor())
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self) -> Filter:
        if self.peek("kw", "NOT"):
            self.i += 1
            self._enter()
            inner = self.factor()
            self.depth -= 1
            return inner.item if isinstance(inner, Not) else Not(inner)
        if self.peek("punct", "("):
            self.i += 1
            self._enter()
            node = self.expr()
            self.take("punct", ")", "')'")
            self.depth -= 1
            return node
        self._term()
        field = self.take("word", what="a field name")
        if self.peek("kw", "IS"):
            self.i += 1
            negate = self.peek("kw", "NOT")
            self.i += negate
            self.take("kw", "NULL", "NULL")
            return IsNull(field, negate)
        negate = self.peek("kw", "NOT")
        if negate or self.peek("kw", "IN"):
            self.i += negate
            self.take("kw", "IN", "IN")
            self.take("punct", "(", "'('")
            values = [self.value()]
            while self.peek("punct", ","):
                self.i += 1
                values.append(self.value())
                if len(values) > MAX_VALUES:
                    raise FilterError(f"filter: more than {MAX_VALUES} values in one IN list")
            self.take("punct", ")", "')'")
            return In(field, tuple(values), negate)
        op = self.take("op", what="a comparison (=, !=, <, <=, >, >=, IN, IS NULL)")
        return Compare(field, "!=" if op == "<>" else op, self.value())

    def value(self) -> Value:
        if self.peek("str"):
            return self.take("str")[1:-1].replace("''", "'")
        if self.peek("num"):
            raw = self.take("num")
            return float(raw) if "." in raw else int(raw)
        if self.peek("kw", "TRUE") or self.peek("kw", "FALSE"):
            return self.take("kw") == "TRUE"
        raise FilterError(f"filter: expected a value ('text', number, TRUE/FALSE) in: {self.text}")


def parse_filter(text: str | None) -> Filter | None:
    """Parse a filter expression; None or blank gives None. Raises FilterError saying where it failed."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def fields(node: Filter) -> set[str]:
    """Every field name the filter refers to."""
    if isinstance(node, (And, Or)):
        return set().union(*(fields(i) for i in node.items))
    if isinstance(node, Not):
        return fields(node.item)
    return {node.field}


def sql_literal(value: Value) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def to_sql(node: Filter, column: Callable[[str], str]) -> str:
    """Compile to a SQL boolean expression; ``column`` maps a field name to a quoted column reference."""
    if isinstance(node, And):
        return "(" + " AND ".join(to_sql(i, column) for i in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(to_sql(i, column) for i in node.items) + ")"
    if isinstance(node, Not):
        return f"(NOT {to_sql(node.item, column)})"
    if isinstance(node, IsNull):
        return f"({column(node.field)} IS {'NOT ' if node.negate else ''}NULL)"
    if isinstance(node, In):
        values = ", ".join(sql_literal(v) for v in node.values)
        return f"({column(node.field)} {'NOT ' if node.negate else ''}IN ({values}))"
    return f"({column(node.field)} {node.op} {sql_literal(node.value)})"
