"""Rows of the LanceDB chunk table: the SQL of filters and access rules, metadata column types, and
chunks from Arrow rows (index/lance.py's helpers, kept apart so the store class reads as its
operations)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from groundwork.index.rows import check_access_names, chunk_from_row
from groundwork.index.store import BUILTIN_FIELDS, RankedRef
from groundwork.types import Access, Chunk

CHUNK_COLUMNS = [
    "chunk_id",
    "doc_id",
    "source",
    "position",
    "text",
    "title",
    "heading",
    "page",
    "content_hash",
    "doc_hash",
    "pipeline_hash",
    "parent_id",
    "parent_text",
    "metadata",
    "acl_tenant",
    "acl_groups",
    "context",
]


def sql_str(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def groups_value(groups: Sequence[str]) -> str | None:
    """Groups stored as '|g1|g2|' so one strpos() tests membership; None = no group restriction."""
    return "|" + "|".join(sorted(set(groups))) + "|" if groups else None


def groups_tuple(value: str | None) -> tuple[str, ...]:
    return tuple(g for g in (value or "").split("|") if g)


def access_sql(access: Access) -> str:
    """SQL for Access's visibility rule (see groundwork.types.Access); names are validated first."""
    check_access_names(access)
    tenant = "acl_tenant IS NULL" if access.tenant is None else f"acl_tenant = {sql_str(access.tenant)}"
    groups = " OR ".join(f"strpos(acl_groups, {sql_str('|' + g + '|')}) > 0" for g in access.groups)
    return f"({tenant} AND (acl_groups IS NULL" + (f" OR {groups}" if groups else "") + "))"


def arrow_type(value: Any) -> pa.DataType:
    """A new metadata column's type, from its first value: every number is float64, so that a later
    1e20 or 2.5 in the same field fits (see groundwork.ingest.metadata for what is refused)."""
    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int | float):
        return pa.float64()
    return pa.string()


def filter_column(field: str, unknown: set[str]) -> str:
    """The SQL for a filter field: a built-in column, a ``meta_`` column, or NULL for a field no
    document has (see ``unknown_fields``)."""
    if field in unknown:
        return "NULL"
    return f"`{field}`" if field in BUILTIN_FIELDS else f"`meta_{field}`"


def column_kind(typ: pa.DataType) -> str:
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_integer(typ):
        return "integer"  # indexes written before all numbers were float64
    return "number" if pa.types.is_floating(typ) else "string"


def coerce(value: Any, typ: pa.DataType) -> Any:
    """Fit a metadata value to its column's type; values that do not fit become null."""
    if value is None:
        return None
    try:
        if pa.types.is_boolean(typ):
            return value if isinstance(value, bool) else None
        if pa.types.is_integer(typ):
            return int(value) if not isinstance(value, bool) and float(value) == int(value) else None
        if pa.types.is_floating(typ):
            return float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def plain(value: Any) -> str:
    """A string or number another process wrote, as text; '?' for anything else."""
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else "?"


def similarity(distance: float) -> float:
    """LanceDB's cosine distance -> the cosine similarity the Store contract gives."""
    return 1.0 - distance


def ranked(table: pa.Table, score_col: str, transform: Callable[[float], float]) -> list[RankedRef]:
    ids, scores = table.column("chunk_id").to_pylist(), table.column(score_col).to_pylist()
    refs = table.column("_rowid").to_pylist()
    return [RankedRef(c, float(transform(x)), r) for c, x, r in zip(ids, scores, refs)]


def chunks_of(table: pa.Table, vectors: np.ndarray | None = None) -> list[Chunk]:
    """Chunks from rows of the chunk columns, with ``vectors`` ``(rows, d)`` float32 when given, else
    the table's ``vector`` column if it has one (read as one numpy block: 384 Python floats per row
    were a large share of hybrid latency)."""
    if vectors is None and "vector" in table.column_names:
        col = table.column("vector").combine_chunks()
        vectors = (
            np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(col), -1)
            if len(col)
            else None
        )
        table = table.drop_columns(["vector"])
    chunks = []
    for i, row in enumerate(table.to_pylist()):
        row["acl_groups"] = groups_tuple(row.get("acl_groups"))
        chunks.append(chunk_from_row(row, vectors[i] if vectors is not None else None))
    return chunks


def with_zero(table: pa.Table) -> pa.Table:
    return table.append_column("_zero", pa.array([0.0] * table.num_rows, pa.float64()))
