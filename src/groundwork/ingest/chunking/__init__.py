"""Chunkers: fixed token windows, structure-aware, hierarchical parent/child, semantic.

All count tokens with the embedder's own tokenizer, so no chunk is silently truncated by the model.
"""

from __future__ import annotations

from groundwork.config import ChunkingSettings
from groundwork.errors import ConfigError
from groundwork.index.embedder import Embedder
from groundwork.ingest.chunking.base import Chunker
from groundwork.ingest.chunking.fixed import FixedTokenChunker
from groundwork.ingest.chunking.hierarchical import HierarchicalChunker
from groundwork.ingest.chunking.semantic import SemanticChunker
from groundwork.ingest.chunking.structure import StructureChunker

__all__ = [
    "Chunker",
    "FixedTokenChunker",
    "HierarchicalChunker",
    "SemanticChunker",
    "StructureChunker",
    "make_chunker",
]


def make_chunker(settings: ChunkingSettings, embedder: Embedder) -> Chunker:
    """The chunker named by ``settings.strategy``. Raises ConfigError when chunks would not fit the model."""
    limit = embedder.max_tokens
    embedded = settings.child_tokens if settings.strategy == "hierarchical" else settings.chunk_tokens
    key = "chunking.child_tokens" if settings.strategy == "hierarchical" else "chunking.chunk_tokens"
    if embedded > limit:
        raise ConfigError(f"{key} = {embedded} exceeds the embedder's limit of {limit} tokens; lower it")
    if settings.strategy == "fixed":
        return FixedTokenChunker(embedder, settings.chunk_tokens, settings.overlap_tokens)
    if settings.strategy == "structure":
        return StructureChunker(embedder, settings.chunk_tokens, settings.min_chunk_tokens)
    if settings.strategy == "hierarchical":
        return HierarchicalChunker(embedder, settings.parent_tokens, settings.child_tokens, settings.min_chunk_tokens)
    return SemanticChunker(embedder, settings.chunk_tokens, settings.semantic_percentile)
