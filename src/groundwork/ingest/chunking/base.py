"""What every chunker shares: the protocol, sentence/paragraph splitting, and building Chunk objects."""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from groundwork.text import LIST_ITEM
from groundwork.types import Chunk, Document, Section

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class Chunker(Protocol):
    """Splits a document into chunks; ``fingerprint`` changes whenever its output could change."""

    @property
    def fingerprint(self) -> str: ...

    def chunk(self, document: Document) -> list[Chunk]: ...


def split_block_lines(text: str) -> list[str]:
    """Lines of a table or list block (most lines start with '|' or a list marker), else [text].

    Tables and lists are split row by row, never run through the sentence splitter, which would join
    their lines and mangle them.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    structural = sum(1 for ln in lines if ln.lstrip().startswith("|") or LIST_ITEM.match(ln))
    return lines if len(lines) > 1 and structural * 2 >= len(lines) else [text]


def split_paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def make_chunk(document: Document, position: int, text: str, section: Section, **extra: object) -> Chunk:
    return Chunk(
        chunk_id=f"{document.doc_id}::{position}",
        doc_id=document.doc_id,
        source=document.source,
        position=position,
        text=text,
        content_hash=content_hash(text),
        heading_path=section.heading_path,
        page=section.page,
        title=document.title,
        metadata={**document.metadata, **section.metadata},
        context=document.context,
        **extra,  # type: ignore[arg-type]
    )


def token_windows(embedder, text: str, size: int, overlap: int) -> list[str]:
    """Slices of ``text`` of at most ``size`` tokens, consecutive ones sharing ``overlap`` tokens."""
    offsets = embedder.token_offsets(text)
    if not offsets:
        return []
    step = size - overlap
    out = []
    for start in range(0, len(offsets), step):
        window = offsets[start : start + size]
        out.append(text[window[0][0] : window[-1][1]].strip())
        if start + size >= len(offsets):
            break
    return [w for w in out if w]
