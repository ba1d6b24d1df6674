"""The LanceDB store's write path and storage maintenance, on pylance (the Lance API LanceDB itself
uses for compaction and version cleanup).

``swap_rows`` replaces rows in one Lance ``Update`` commit; ``maintain`` is ``LanceStore.optimize``'s
policy: rewrite fragments with many deleted rows, index new rows as delta segments, and merge
indexed runs by size tiers (``tier_to_merge``), so a small write never rewrites the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from groundwork.config import IndexSettings

# Lance's default: a fragment with more than this share of its rows deleted is rewritten without them.
_DELETED_SHARE = 0.1


def latest(table: Any) -> Any:
    """The Lance dataset behind a LanceDB table, at the table's latest version."""
    table.checkout_latest()
    return table.to_lance()


def swap_rows(dataset: Any, row_addresses: np.ndarray, new_rows: pa.Table) -> None:
    """Delete the rows at ``row_addresses`` and add ``new_rows`` in one Lance ``Update`` commit.

    A row address is ``fragment id << 32 | row offset`` (Lance format). Each touched fragment gets a
    new deletion vector (bytes per row); ``new_rows`` go to a new data file. Nothing is visible
    before the commit, so a crash leaves either the old rows or the new ones.
    """
    from lance import LanceDataset, LanceOperation
    from lance.fragment import write_fragments

    fragment_ids = row_addresses >> 32
    offsets = row_addresses & 0xFFFFFFFF
    removed, updated = [], []
    for fragment_id in np.unique(fragment_ids).tolist():
        kept = dataset.get_fragment(fragment_id).delete_rows(offsets[fragment_ids == fragment_id].tolist())
        if kept is None:
            removed.append(fragment_id)
        else:
            updated.append(kept)
    operation = LanceOperation.Update(
        removed_fragment_ids=removed, updated_fragments=updated, new_fragments=write_fragments(new_rows, dataset)
    )
    LanceDataset.commit(dataset, operation, read_version=dataset.version)


def index_segments(dataset: Any) -> dict[str, list[frozenset[int]]]:
    """Each index's segments as the fragment ids each covers, oldest first (system indexes left out)."""
    return {
        d.name: [frozenset(int(f) for f in s.fragment_ids) for s in d.segments]
        for d in dataset.describe_indices()
        if not d.name.startswith("__")
    }


def _runs(dataset: Any, segments: dict[str, list[frozenset[int]]]) -> list[list[int]]:
    """The units compaction can merge, oldest first: fragments covered by the same index segments
    (Lance never merges fragments that different segments cover); in a table without indexes, each
    fragment. Fragments some index does not cover yet are left out."""
    runs: dict[tuple[int, ...], list[int]] = {}
    for fragment in dataset.get_fragments():
        fid = fragment.fragment_id
        key = tuple(next((i for i, s in enumerate(segs) if fid in s), -1) for segs in segments.values())
        if -1 not in key:
            runs.setdefault(key if segments else (fid,), []).append(fid)
    return list(runs.values())


def _tier(rows: int, k: int) -> int:
    """The size tier of a run: floor(log_k(rows))."""
    tier = 0
    while rows >= k:
        rows //= k
        tier += 1
    return tier


def tier_to_merge(run_rows: Sequence[int], k: int, max_rows: int) -> int:
    """How many of the newest runs (``run_rows``: rows per run, oldest first) to merge into one.

    Size-tiered compaction (the log merge policy of Lucene; O'Neil et al. 1996, "The log-structured
    merge-tree"): when at least ``k`` of the newest runs share the newest run's tier
    (floor(log_k rows)) and each has fewer than ``max_rows`` rows, they are merged, so a row is
    rewritten about log_k(max_rows / rows per write) times over its life, and never once its run
    holds ``max_rows``. Returns 0 when nothing is due.
    """
    if not run_rows or run_rows[-1] >= max_rows:
        return 0
    tier = _tier(run_rows[-1], k)
    n = 0
    for rows in reversed(run_rows):
        if rows >= max_rows or _tier(rows, k) != tier:
            break
        n += 1
    return n if n >= k else 0


def compact(table: Any, fragment_ids: Sequence[int], settings: IndexSettings) -> None:
    """Rewrite ``fragment_ids`` only (every other fragment is excluded from Lance's planner): adjacent
    ones covered alike are merged into fragments of up to ``index.compaction_max_rows`` rows, and
    deleted rows are dropped."""
    dataset = latest(table)
    keep = set(fragment_ids)
    others = [f.fragment_id for f in dataset.get_fragments() if f.fragment_id not in keep]
    dataset.optimize.compact_files(
        target_rows_per_fragment=settings.compaction_max_rows,
        excluded_fragment_ids=others,
        materialize_deletions_threshold=_DELETED_SHARE,
    )
    table.checkout_latest()


def maintain(table: Any, settings: IndexSettings) -> None:
    """The compaction policy of one table, run after each ingest:

    1. Fragments with more than 10 % of their rows deleted are rewritten without them.
    2. Rows written since the last index update stay unindexed (searches scan them) until they hold
       ``index.unindexed_max_rows`` rows or ``index.compaction_fragments`` fragments; then their
       fragments are compacted (into fragments of up to ``index.compaction_max_rows`` rows) and they
       are indexed as a new segment of each index.
    3. Size-tiered merges of the indexed runs (see ``tier_to_merge``): the runs' index segments are
       merged, then their fragments.

    Nothing else is rewritten, so the cost of a small ingest does not grow with the table.
    """
    dataset = latest(table)
    fragments = [f.metadata for f in dataset.get_fragments()]
    heavy = [f.id for f in fragments if f.num_deletions > _DELETED_SHARE * f.physical_rows]
    if heavy:
        compact(table, heavy, settings)
    segments = index_segments(latest(table))
    if segments:
        covered = frozenset.intersection(*(frozenset().union(*segs) for segs in segments.values()))
        tail = [f for f in latest(table).get_fragments() if f.fragment_id not in covered]
        rows = sum(f.metadata.physical_rows for f in tail)
        if len(tail) < settings.compaction_fragments and rows < settings.unindexed_max_rows:
            return
        # Merge the tail's fragments (one per write batch) before indexing them as one segment: a run of
        # many fragments is never merged afterwards, and each fragment is searched on its own (SciFact in
        # 45 fragments: hybrid search without the embedding 0.6x slower than in 3, docs/benchmarks.md).
        if len(tail) > 1:
            compact(table, [f.fragment_id for f in tail], settings)
        latest(table).optimize.optimize_indices(num_indices_to_merge=0)
        table.checkout_latest()
    for _ in range(_MAX_TIER_MERGES):
        if not _merge_tier(table, settings):
            return


# A bound on tier merges per optimize; one new run completes at most one merge per tier.
_MAX_TIER_MERGES = 16


def _merge_tier(table: Any, settings: IndexSettings) -> bool:
    """Merge the newest runs if a tier is full (see ``tier_to_merge``); returns whether it did."""
    dataset = latest(table)
    segments = index_segments(dataset)
    runs = _runs(dataset, segments)
    rows = {f.fragment_id: f.metadata.physical_rows for f in dataset.get_fragments()}
    n = tier_to_merge(
        [sum(rows[f] for f in run) for run in runs], settings.compaction_fragments, settings.compaction_max_rows
    )
    if n == 0:
        return False
    picked = runs[-n:]
    wanted = {frozenset(run) for run in picked}
    # Lance merges an index's newest n segments; merge only when those are exactly the picked runs'.
    if any(len(segs) < n or set(segs[-n:]) != wanted for segs in segments.values()):
        return False
    for name in segments:
        latest(table).optimize.optimize_indices(index_names=[name], num_indices_to_merge=n)
    compact(table, [f for run in picked for f in run], settings)
    return True
