"""Citation markers: validate ``[n]`` against the supplied chunks, and renumber them in order of use."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(\d+)\]")
_GROUP = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)+)\]")  # "[1, 3]" -> "[1][3]"
_MARKER_WS = re.compile(r"[ \t]*\[(\d+)\]")  # an invalid marker goes with the space before it


def check_citations(text: str, valid: set[int]) -> tuple[str, int]:
    """Remove markers whose n is not in ``valid``. Returns (text, number of markers removed).

    Grouped markers like ``[1, 3]`` are split into ``[1][3]`` first, so each is checked on its own.
    """
    text = _GROUP.sub(lambda m: "".join(f"[{n.strip()}]" for n in re.split(r"[,;]", m.group(1))), text)
    removed = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal removed
        if int(m.group(1)) in valid:
            return m.group(0)
        removed += 1
        return ""

    return _MARKER_WS.sub(sub, text), removed


def cited_numbers(text: str) -> list[int]:
    """The n of every ``[n]`` in order of first use."""
    return list(dict.fromkeys(int(n) for n in _MARKER.findall(text)))


class CitationStreamFilter:
    """``check_citations`` for streamed text: holds back a possible partial marker (``[``, ``[1``)
    until it is complete, then passes or drops it. ``feed`` returns what may be shown now. With
    ``renumber``, valid markers are rewritten 1, 2, ... in order of first use, as ``renumber`` does."""

    def __init__(self, valid: set[int], renumber: bool = False) -> None:
        self.valid = valid
        self.buffer = ""
        self.removed = 0
        self.renumber = renumber
        self.mapping: dict[int, int] = {}

    def feed(self, piece: str) -> str:
        self.buffer += piece
        out = []
        while self.buffer:
            start = self.buffer.find("[")
            if start < 0:
                out.append(self.buffer)
                self.buffer = ""
                break
            out.append(self.buffer[:start])
            self.buffer = self.buffer[start:]
            m = re.match(r"\[(\d{0,4})(\]?)", self.buffer)
            assert m is not None
            digits, close = m.groups()
            if digits and close:  # a complete marker
                if int(digits) in self.valid:
                    n = self.mapping.setdefault(int(digits), len(self.mapping) + 1) if self.renumber else int(digits)
                    out.append(f"[{n}]")
                else:
                    self.removed += 1
                self.buffer = self.buffer[m.end() :]
            elif not close and m.end() == len(self.buffer):
                break  # maybe the start of a marker: wait for more text
            else:
                out.append("[")
                self.buffer = self.buffer[1:]
        return "".join(out)

    def flush(self) -> str:
        rest, self.buffer = self.buffer, ""
        return rest


def renumber(text: str, valid: set[int]) -> tuple[str, dict[int, int]]:
    """Rewrite markers that refer to ``valid`` context numbers as 1, 2, ... in order of first use.

    Returns the new text and the mapping old n -> new n. Markers outside ``valid`` are left as they are
    (``check_citations`` removes those first).
    """
    mapping: dict[int, int] = {}

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in valid:
            return m.group(0)
        mapping.setdefault(n, len(mapping) + 1)
        return f"[{mapping[n]}]"

    return _MARKER.sub(sub, text), mapping
