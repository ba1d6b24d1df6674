"""Text utilities shared by every stage: sentence splitting (chunkers, extractive answers, the
grounding check, answer metrics). A leaf module: it imports nothing from Groundwork."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def unwrap_lines(text: str) -> list[str]:
    """Join hard-wrapped lines back into one line per paragraph or list item.

    pysbd ends a sentence at every newline, so a paragraph wrapped at 100 columns would otherwise be
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
    """Sentences of ``text`` by pysbd's rule-based segmenter (Sadvilkar & Neumann 2020), stripped.

    Hard-wrapped lines are joined first (see unwrap_lines), and punctuation inside inline code
    (`./.groundwork`, `a.b()`) is hidden from the segmenter, which would otherwise end a sentence there.
    """
    out = []
    for unit in unwrap_lines(text):
        masked = _CODE_SPAN.sub(lambda m: m.group(0).translate(_MASK), unit)
        out.extend(s.strip().translate(_UNMASK) for s in _segmenter().segment(masked) if s.strip())
    return out
