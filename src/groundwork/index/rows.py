"""What both stores share about a stored chunk row: its heading encoding, turning a row back into a
Chunk, the access-name check, re-embedding in batches, and the model-mismatch message."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from groundwork.errors import FilterError, ModelMismatchError
from groundwork.filters import Filter, fields
from groundwork.types import ACL_NAME, ACL_NAME_RULE, Access, Chunk


def heading_value(path: Sequence[str]) -> str | None:
    """The stored form of a heading path: a JSON array (a heading may itself contain ' > ')."""
    return json.dumps(list(path), ensure_ascii=False) if path else None


def heading_path(value: str | None) -> tuple[str, ...]:
    """The heading path of a stored value; indexes written before JSON arrays joined it with ' > '."""
    if not value:
        return ()
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(h, str) for h in parsed):
            return tuple(parsed)
    return tuple(h for h in value.split(" > ") if h)


def chunk_from_row(row: Mapping[str, Any], vector: np.ndarray | None = None) -> Chunk:
    """A Chunk from a stored row (keys: the chunk columns, ``metadata`` as a dict or JSON text,
    ``acl_groups`` as a sequence of group names or None)."""
    metadata = row.get("metadata") or {}
    return Chunk(
        chunk_id=row["chunk_id"],
        doc_id=row["doc_id"],
        source=row["source"],
        position=row["position"],
        text=row["text"],
        content_hash=row["content_hash"],
        heading_path=heading_path(row.get("heading")),
        page=row.get("page"),
        title=row.get("title") or "",
        parent_id=row.get("parent_id"),
        parent_text=row.get("parent_text"),
        metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata),
        vector=vector,
        tenant=row.get("acl_tenant"),
        allowed_groups=tuple(row.get("acl_groups") or ()),
        context=row.get("context") or "",
    )


def check_access_names(access: Access) -> None:
    """Raise FilterError for a tenant or group name outside ``ACL_NAME`` (never reaches SQL)."""
    for name in (access.tenant, *access.groups):
        if name is not None and not ACL_NAME.match(name):
            raise FilterError(f"invalid tenant or group name {name!r}: {ACL_NAME_RULE}")


def unknown_fields(where: Filter, known: set[str], access: Access | None) -> set[str]:
    """The fields of ``where`` that no document has.

    A caller who may see everything gets a FilterError naming the field and listing the filterable
    ones (a typo is found at once). A restricted caller gets the set back, and the store treats those
    fields as having no value (``a = 1`` matches nothing, ``a IS NULL`` everything): metadata field
    names come from every tenant's documents, and neither an error nor its list may tell one tenant
    which fields another tenant's documents have."""
    unknown = fields(where) - known
    if unknown and (access is None or access.everything):
        listed = ", ".join(sorted(known))
        raise FilterError(f"filter: unknown field '{sorted(unknown)[0]}'; filterable fields: {listed}")
    return unknown


def embed_all(texts: Sequence[str], embed: Callable[[list[str]], np.ndarray], dimension: int, batch: int) -> np.ndarray:
    """(len(texts), dimension) float32: ``embed`` called on ``batch`` texts at a time."""
    if not texts:
        return np.zeros((0, dimension), np.float32)
    return np.concatenate([embed(list(texts[i : i + batch])) for i in range(0, len(texts), batch)])


def check_same_model(where: str, stored: Mapping[str, Any], model_id: str, dimension: int, remedy: str) -> None:
    """Raise ModelMismatchError when ``stored`` (``model_id``, ``dimension``) is another model."""
    if stored.get("model_id") != model_id or stored.get("dimension") != dimension:
        raise ModelMismatchError(
            f"the knowledge base {where} was built with embedding model '{stored.get('model_id')}' "
            f"({stored.get('dimension')}-d) but the configured model is '{model_id}' ({dimension}-d); "
            f"set embedder.model back, or {remedy}"
        )
