"""Citation markers: renumber ``[n]`` in order of first use, so answers cite [1], [2], ... without gaps."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(\d+)\]")


def renumber(text: str, valid: set[int]) -> tuple[str, dict[int, int]]:
    """Rewrite markers that refer to ``valid`` context numbers as 1, 2, ... in order of first use.

    Returns the new text and the mapping old n -> new n. Markers outside ``valid`` are left as they are
    (the citation check of the grounded-generation stage deals with those).
    """
    mapping: dict[int, int] = {}

    def sub(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in valid:
            return m.group(0)
        mapping.setdefault(n, len(mapping) + 1)
        return f"[{mapping[n]}]"

    return _MARKER.sub(sub, text), mapping
