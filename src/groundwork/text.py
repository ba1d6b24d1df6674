"""Text utilities shared by every stage: sentence splitting (chunkers, extractive answers, the
grounding check, answer metrics). A leaf module: it imports nothing from Groundwork."""

from __future__ import annotations

import re

import sentencex

SENTENCE_SPLITTER = "sentencex+markdown"
"""Names the segmenter in every chunker's fingerprint: another segmenter moves chunk boundaries, so an
index built with one is re-chunked by the next sync rather than mixed."""


LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def unwrap_lines(text: str) -> list[str]:
    """Join hard-wrapped lines back into one line per paragraph or list item.

    The segmenter ends a sentence at every newline, so a paragraph wrapped at 100 columns would otherwise be
    cut into line fragments.
    """
    units: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            units.append("")
        elif units and units[-1] and not LIST_ITEM.match(line):
            units[-1] += " " + line.strip()
        else:
            units.append(line.strip())
    return [u for u in units if u]


_CODE_SPAN = re.compile(r"`[^`\n]+`")
_MASK = str.maketrans({".": "\ue000", "!": "\ue001", "?": "\ue002"})
_UNMASK = str.maketrans({"\ue000": ".", "\ue001": "!", "\ue002": "?"})


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, stripped, by Wikimedia's rule-based segmenter sentencex
    (https://github.com/wikimedia/sentencex; Rust, English abbreviation and number rules).

    It replaced pysbd (Sadvilkar & Neumann 2020) on 2026-12-01: the same sentences on 93% of SciFact
    abstracts at ~120x the speed (0.29 s vs 35.6 s for the 5,183 abstracts, ``bench/sentences.py``);
    pysbd was a fifth of ingest time (docs/benchmarks.md, "Sentence splitting").

    Hard-wrapped lines are joined first (see unwrap_lines), and punctuation inside inline code
    (`./.groundwork`, `a.b()`) is hidden from the segmenter, which would otherwise end a sentence there.
    """
    out = []
    for unit in unwrap_lines(text):
        marker = LIST_ITEM.match(unit)  # "1. Step": sentencex would end a sentence after "1."
        head, body = (unit[: marker.end()], unit[marker.end() :]) if marker else ("", unit)
        masked = _CODE_SPAN.sub(lambda m: m.group(0).translate(_MASK), body)
        sentences = [s.strip().translate(_UNMASK) for s in _segments(masked) if s.strip()]
        if sentences and head:
            sentences[0] = head + sentences[0]
        out.extend(sentences)
    return out


_AFTER_PAREN = re.compile(r"(?<=[.!?]\))\s+(?=[A-Z])")  # "(… 2.2.) The next": a sentence ended inside


def _segments(text: str) -> list[str]:
    """sentencex's segments of ``text`` (they concatenate back to it), with two repairs for Markdown
    prose: a boundary not followed by whitespace is no boundary ("**Bold.** Next", "![alt](x.png)",
    "a.b"), and a sentence closed inside parentheses ends at the closing one."""
    merged: list[str] = []
    for seg in sentencex.segment("en", text):
        if merged and not merged[-1][-1:].isspace():
            merged[-1] += seg
        else:
            merged.append(seg)
    return [part for seg in merged for part in _AFTER_PAREN.split(seg)]
