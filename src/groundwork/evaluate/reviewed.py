"""Resolved reviews as eval-set questions: the eval set grows with every answer a reviewer corrected.

A resolved review (``groundwork.state.reviews``) is one question of a live eval set (see
``groundwork.evaluate.datasets``): its question; the reviewer's answer as the reference answer; as
sources the documents the reviewer picked plus the document the reviewer wrote, if any; and the
asker's tenant and groups, so that the question is searched as the asker would. The review table is
the record; ``groundwork reviews export --out FILE`` writes it as a JSONL eval set that ``groundwork
eval ...`` and the gate read, and ``groundwork monitor run`` adds it to the monitored eval set.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from groundwork.evaluate.datasets import EvalDataset, live_dataset
from groundwork.state.protocols import ReviewQueue
from groundwork.state.reviews import ReviewItem

PAGE = 500  # reviews read per page


def eval_row(item: ReviewItem) -> dict[str, Any]:
    """The eval-set question of a resolved review: {id, question, answer, sources, type, tenant, groups}.
    ``tenant``/``groups`` are left out when the asker saw everything."""
    res = item.resolution or {}
    sources = list(res.get("doc_ids") or [])
    if res.get("document"):
        sources.append(res["document"]["doc_id"])
    row: dict[str, Any] = {
        "id": f"review-{item.review_id}",
        "question": item.question,
        "answer": res.get("answer") or "",
        "sources": list(dict.fromkeys(sources)),
        "type": "reviewed",
    }
    if item.groups is not None:
        row |= {"tenant": item.tenant, "groups": item.groups}
    return row


def reviewed_rows(queue: ReviewQueue) -> list[dict[str, Any]]:
    """The eval rows of every resolved review, oldest first (all tenants: this is the operator's view)."""
    items: list[ReviewItem] = []
    while True:
        page = queue.list("resolved", PAGE, len(items))
        items += page
        if len(page) < PAGE:
            break
    return [eval_row(i) for i in reversed(items)]


def reviewed_dataset(queue: ReviewQueue) -> EvalDataset:
    """The resolved reviews as a live eval set named ``reviewed``."""
    return live_dataset("reviewed", reviewed_rows(queue))


def write_eval_set(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as a live eval set (first line {"live": true}), atomically: a reader sees the
    old file or the new one, never half of one. Raises OSError when the folder is not writable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"live": True}) + "\n")
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
