"""Text normalisation for detection: one canonical form of what a reader (or a model) sees, with a map
back to the original characters, so that a match found in the canonical form masks the original span.

Each original character becomes zero or more canonical characters:

- Unicode tag characters (U+E0020-U+E007E, "ASCII smuggling") become the ASCII they encode: they are
  invisible on screen but a model's tokenizer reads them.
- invisible format characters (category Cf: zero-width space/joiners U+200B-U+200D, word joiner
  U+2060, BOM U+FEFF, soft hyphen U+00AD, bidi controls U+202A-U+202E and U+2066-U+2069, ...) and the
  invisible fillers outside Cf (U+034F, U+115F, U+1160, U+3164, U+FFA0) are removed;
- every separator (category Z: no-break space, ideographic space) becomes a space, a line or
  paragraph separator a line break;
- NFKC compatibility folding (fullwidth, mathematical and circled letters, ligatures) is taken through
  the decomposed form (NFKD), so that combining marks (category Mn: accents, variation selectors) can
  be dropped as well: ``ìgnóre`` reads ``ignore``;
- a non-ASCII character left over is replaced by its prototype in Unicode TR39's confusables table
  (UTS #39 section 4, data from the ``confusable-homoglyphs`` package) when that prototype is ASCII:
  Cyrillic ``а е о р с у х і ѕ ј`` and Greek ``α ι ν ο ρ`` read as Latin. TR39 folds capital I into
  ``l``; a capital look-alike of I (Cyrillic ``І``, Greek ``Ι``) reads ``I`` here, so that a word
  keeps its spelling.

Then runs of whitespace collapse to one space (one newline when the run holds a line break), so
line-anchored patterns still see lines. ASCII is never changed: ``0`` and ``1`` stay digits.

The letters-only view (``letters``) drops everything but letters, lower-cased: ``i g n o r e``,
``i.g.n.o.r.e`` and ``ig**nore`` all read ``ignore`` there.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from confusable_homoglyphs.confusables import confusables_data

_INVISIBLE_NOT_CF = frozenset("\u034f\u115f\u1160\u3164\uffa0")
_TAG_ASCII = range(0xE0020, 0xE007F)


@dataclass(frozen=True)
class Normalised:
    """``text`` in canonical form; ``origin[i]`` is the index in the original text of the character
    that produced ``text[i]`` (several canonical characters may share one origin)."""

    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original (start, end) covering canonical characters ``start:end`` (end exclusive);
        characters removed inside the span (zero-width, soft hyphens) are inside it too."""
        if end <= start:
            raise ValueError(f"empty span {start}:{end}")
        return self.origin[start], self.origin[end - 1] + 1


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Non-ASCII character -> its ASCII prototype, from TR39's confusables table."""
    out = {}
    for char, entries in confusables_data.items():
        if char.isascii() or len(char) != 1:
            continue
        for entry in entries:
            proto = entry["c"]
            if proto.isascii() and proto.strip() and proto.isprintable():
                out[char] = "I" if proto == "l" and unicodedata.category(char) == "Lu" else proto
                break
    return out


@lru_cache(maxsize=65536)
def _fold(char: str) -> str:
    """What one original character reads as (see the module docstring)."""
    cp = ord(char)
    if cp < 0x80:
        return char
    if cp in _TAG_ASCII:
        return chr(cp - 0xE0000)
    category = unicodedata.category(char)
    if category == "Cf" or char in _INVISIBLE_NOT_CF:
        return ""
    if category[0] == "Z":  # line and paragraph separators end a line; the rest are spaces
        return "\n" if category in ("Zl", "Zp") else " "
    protos = _prototypes()
    out = []
    for part in unicodedata.normalize("NFKD", char):
        if unicodedata.category(part) == "Mn":
            continue
        out.append(part if part.isascii() else protos.get(part, part))
    return "".join(out)


_SPACE_RUN = re.compile(r"\s+")


def _normalise_ascii(text: str) -> Normalised:
    """The same result for ASCII text, where only whitespace changes: one pass of a regex."""
    parts: list[str] = []
    origin: list[int] = []
    pos = 0
    for m in _SPACE_RUN.finditer(text):
        parts.append(text[pos : m.start()])
        origin.extend(range(pos, m.start()))
        if origin and m.end() < len(text):  # leading and trailing whitespace is dropped
            parts.append("\n" if any(c in m.group() for c in "\n\r\x0b\x0c\x1c\x1d\x1e") else " ")
            origin.append(m.start())
        pos = m.end()
    parts.append(text[pos:])
    origin.extend(range(pos, len(text)))
    return Normalised("".join(parts), tuple(origin))


def normalise(text: str) -> Normalised:
    """``text`` in canonical form with its map to the original (see the module docstring).
    Linear in ``len(text)``."""
    if text.isascii():
        return _normalise_ascii(text)
    chars: list[str] = []
    origin: list[int] = []
    pending_space = -1  # origin of a whitespace run not yet written; -1 when none
    pending_newline = False
    for i, char in enumerate(text):
        for c in _fold(char):
            if c.isspace():
                if pending_space < 0:
                    pending_space = i
                pending_newline = pending_newline or c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85"
                continue
            if pending_space >= 0:
                if chars:  # leading whitespace is dropped
                    chars.append("\n" if pending_newline else " ")
                    origin.append(pending_space)
                pending_space, pending_newline = -1, False
            chars.append(c)
            origin.append(i)
    return Normalised("".join(chars), tuple(origin))


def letters(norm: Normalised) -> Normalised:
    """The letters of ``norm`` only, lower-cased, with the map to the original text."""
    keep = [i for i, c in enumerate(norm.text) if c.isalpha()]
    # per character, so that the text keeps one character per origin ("İ".lower() has two)
    return Normalised("".join(norm.text[i].lower()[0] for i in keep), tuple(norm.origin[i] for i in keep))
