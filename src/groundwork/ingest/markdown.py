"""Split Markdown text into sections by ATX headings (``#`` .. ``######``), keeping the heading path.

Used for .md files and for HTML, whose main content trafilatura extracts as Markdown.
"""

from __future__ import annotations

import re

from groundwork.types import Section

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_sections(text: str) -> list[Section]:
    """Return one Section per heading-delimited block; text before the first heading has an empty path.

    Headings inside fenced code blocks are not treated as headings. Empty sections are dropped.
    """
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(buf).strip()
        if body:
            sections.append(Section(text=body, heading_path=tuple(h for _, h in path)))
        buf.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence else _HEADING.match(line)
        if m:
            flush()
            level = len(m.group(1))
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, m.group(2).strip()))
            # The heading line stays in the body so BM25 and the embedder see it.
            buf.append(line)
        else:
            buf.append(line)
    flush()
    # A section holding only its heading line adds nothing of its own: fold it into the next one.
    merged: list[Section] = []
    for sec in sections:
        if (
            merged
            and _only_heading(merged[-1])
            and sec.heading_path[: len(merged[-1].heading_path)] == merged[-1].heading_path
        ):
            prev = merged.pop()
            sec = Section(text=prev.text + "\n\n" + sec.text, heading_path=sec.heading_path, page=sec.page)
        merged.append(sec)
    return merged


def _only_heading(section: Section) -> bool:
    lines = [ln for ln in section.text.splitlines() if ln.strip()]
    return len(lines) == 1 and bool(_HEADING.match(lines[0]))


def markdown_title(text: str) -> str:
    """The first level-1 heading, else the first heading of any level, else ''."""
    first = ""
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            if len(m.group(1)) == 1:
                return m.group(2).strip()
            first = first or m.group(2).strip()
    return first
