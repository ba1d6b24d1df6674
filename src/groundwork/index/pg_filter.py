"""A metadata filter (``groundwork.filters``) as parameterised SQL over the ``chunks`` table."""

from __future__ import annotations

from typing import Any

from groundwork.filters import And, Compare, Filter, In, IsNull, Not, Or
from groundwork.index.store import BUILTIN_FIELDS

_JSON_OPS = {"=", "!=", "<", "<=", ">", ">="}


def compile_filter(node: Filter, params: list[Any]) -> str:
    """A filter as parameterised SQL. Built-in fields are columns; metadata fields are compared as
    jsonb (numbers numerically, strings as text), and ``=`` / ``IN`` use containment (``@>``), which
    the GIN index on ``metadata`` serves."""
    from psycopg.types.json import Jsonb

    if isinstance(node, And):
        return "(" + " AND ".join(compile_filter(i, params) for i in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(compile_filter(i, params) for i in node.items) + ")"
    if isinstance(node, Not):
        return f"(NOT {compile_filter(node.item, params)})"
    builtin = node.field in BUILTIN_FIELDS
    col = node.field if builtin else f"(metadata -> '{node.field}')"
    if isinstance(node, IsNull):
        if builtin:
            return f"({col} IS {'NOT ' if node.negate else ''}NULL)"
        null = f"({col} IS NULL OR {col} = 'null'::jsonb)"
        return f"(NOT {null})" if node.negate else null
    if isinstance(node, In):
        if builtin:
            params.append(list(node.values))
            return f"({'NOT ' if node.negate else ''}({col} = ANY(%s)) AND {col} IS NOT NULL)"
        parts = []
        for v in node.values:
            params.append(Jsonb({node.field: v}))
            parts.append("metadata @> %s")
        inside = "(" + " OR ".join(parts) + ")"
        return f"(NOT {inside} AND {col} IS NOT NULL AND {col} <> 'null'::jsonb)" if node.negate else inside
    assert isinstance(node, Compare) and node.op in _JSON_OPS
    if builtin:
        params.append(node.value)
        return f"({col} {node.op} %s)"
    if node.op == "=":
        params.append(Jsonb({node.field: node.value}))
        return "(metadata @> %s)"
    params.append(Jsonb(node.value))
    return f"({col} {node.op} %s)"
