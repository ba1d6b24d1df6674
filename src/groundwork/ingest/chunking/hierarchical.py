"""Hierarchical parent/child chunking (the "small-to-big" / parent-document retriever pattern).

Parents are structure-aware chunks of up to ``parent_tokens``; each is split again into children of up
to ``child_tokens``. Only children are embedded and matched; each carries its parent's id and text, and
context assembly returns the parent.
"""

from __future__ import annotations

from groundwork.errors import ConfigError
from groundwork.index.embedder import Embedder
from groundwork.ingest.chunking.base import make_chunk
from groundwork.ingest.chunking.structure import StructureChunker
from groundwork.text import SENTENCE_SPLITTER
from groundwork.types import Chunk, Document, Section


class HierarchicalChunker:
    def __init__(self, embedder: Embedder, parent_tokens: int, child_tokens: int, min_tokens: int = 0) -> None:
        if child_tokens > parent_tokens:
            raise ConfigError("child_tokens must not exceed parent_tokens")
        self.embedder = embedder
        self.parents = StructureChunker(embedder, parent_tokens, min_tokens)
        self.children = StructureChunker(embedder, child_tokens, 0)

    @property
    def fingerprint(self) -> str:
        return (
            f"hierarchical:{self.parents.size}:{self.children.size}:{self.parents.min_tokens}:{SENTENCE_SPLITTER}:"
            f"{self.embedder.model_id}"
        )

    def chunk(self, document: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        for p, (parent_text, _, section) in enumerate(self.parents.split_sections(document.sections)):
            parent_id = f"{document.doc_id}::p{p}"
            for child_text, n, _ in self.children.split_sections(
                [Section(parent_text, section.heading_path, section.page, section.metadata)]
            ):
                chunks.append(
                    make_chunk(
                        document,
                        len(chunks),
                        child_text,
                        section,
                        parent_id=parent_id,
                        parent_text=parent_text,
                        tokens=n,
                    )
                )
        return chunks
