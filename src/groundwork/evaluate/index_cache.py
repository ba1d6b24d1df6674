"""Indexes built for evaluation, cached by corpus fingerprint and configuration.

Key: sha256 of (corpus bytes, their absolute paths and how they are read, chunking settings, embedder
model (and backend where it changes the vectors), full-text index settings, whether record metadata is
context text, Groundwork version). Retrieval mode, top_k, fusion and answer settings are query-time
settings and share one index, so bm25 / dense / hybrid runs of the same corpus build it once.
Building is an ordinary idempotent ingest, so an interrupted build is completed by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from groundwork import __version__
from groundwork.config import Settings
from groundwork.evaluate.datasets import LIVE, DatasetError, EvalDataset
from groundwork.index.embedder import backend_model_id
from groundwork.kb import KnowledgeBase
from groundwork.text import SENTENCE_SPLITTER


def default_cache_dir() -> Path:
    return Path(os.environ.get("GROUNDWORK_EVAL_CACHE") or Path.home() / ".cache" / "groundwork" / "eval")


def index_key(dataset: EvalDataset, settings: Settings) -> str:
    parts = {
        "data": dataset.fingerprint(),
        # Document ids and sources are absolute paths: the same files elsewhere are another index.
        "paths": [str(p.resolve()) for p in dataset.corpus],
        "chunking": settings.chunking.model_dump(),
        "sentences": SENTENCE_SPLITTER,  # moves chunk boundaries
        # The backend only where it changes the vectors (onnx-int8), so torch and onnx share an index.
        "embedder": settings.embedder.model + backend_model_id("", settings.embedder),
        "fts": {k: v for k, v in settings.index.model_dump().items() if k.startswith("fts_")},
        "metadata_context": settings.ingest.metadata_context,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def index_path(dataset: EvalDataset, settings: Settings, cache_dir: Path | None = None) -> Path:
    """The folder of ``dataset``'s index under ``settings`` (it exists once built)."""
    return (cache_dir or default_cache_dir()) / f"{dataset.name}-{index_key(dataset, settings)}"


def open_index(dataset: EvalDataset, settings: Settings, cache_dir: Path | None = None) -> KnowledgeBase:
    """A KnowledgeBase over ``dataset``'s corpus, built on first use; for a live eval set
    (``{"live": true}``), the knowledge base of ``settings`` itself, read only. Raises DatasetError
    when corpus files fail to load, StoreError when a live knowledge base does not exist."""
    # Evaluation runs thousands of questions: they are not user answers, so they are not audited.
    audit = settings.audit.model_copy(update={"enabled": False})
    if dataset.fmt == LIVE:
        kb = KnowledgeBase(settings=settings.model_copy(update={"audit": audit}))
        kb.require_existing()
        return kb
    root = cache_dir or default_cache_dir()
    path = index_path(dataset, settings, root)
    # One embedding cache for every evaluation index: a variant that changes only the full-text or
    # chunk settings re-embeds only the chunk texts it has not seen.
    embedder = settings.embedder.model_copy(update={"cache_dir": settings.embedder.cache_dir or root})
    kb = KnowledgeBase(settings=settings.model_copy(update={"kb": path, "embedder": embedder, "audit": audit}))
    r = dataset.records
    report = kb.ingest(
        dataset.corpus,
        text_field=r.text_field if r else None,
        id_field=r.id_field if r else None,
        metadata_fields=list(r.metadata_fields) if r else None,
    )
    if report.failed:
        reasons = "; ".join(f"{f.path}: {f.reason}" for f in report.failed[:3])
        raise DatasetError(f"corpus of {dataset.name} did not load: {reasons}")
    return kb
