"""Output screening that runs before any text leaves the process, streamed or not.

The answer is screened one sentence at a time: deny words are masked, and PII is masked unless it is
quoted from the sources the answer was built from (the caller may read those documents: it is their
data). ``guard.pii_strict`` masks every PII span, quoted or not. Streaming releases text only up to
the last complete sentence, after screening it (``ReleaseBuffer``), so the pieces a client joins
equal the final answer byte for byte; the cost is at most one sentence of delay. A non-streamed
answer is screened by the same function on the same sentences, so both paths give the same text.

Checks that can refuse the whole answer (``block`` actions, the grounding check with ``block``)
cannot be undone once text is out: with any of them configured the answer is released whole, at
the end (``blocks_output``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from groundwork.config import GuardSettings
from groundwork.guard.pii import find_pii, mask_pii
from groundwork.guard.topics import DenyWords
from groundwork.types import GuardDecision

# A sentence ends at . ! ? (with closing quotes or brackets) followed by white space, or at a newline.
_SENTENCE_END = re.compile(r"(?:[.!?][\"')\]]*[ \t]+|\n+)")


def sentences(text: str) -> list[str]:
    """``text`` cut after each sentence end; the parts join back to ``text`` exactly."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        out.append(text[start:])
    return out


class OutputScreen:
    """Screens the sentences of one answer and remembers what it did (``decisions``).

    Args:
        settings: the guard settings (deny words and PII actions, region, strict mode).
        words: the deny-word matcher.
        sources: the texts of the context chunks the answer may quote.
    """

    def __init__(self, settings: GuardSettings, words: DenyWords, sources: Sequence[str]) -> None:
        self.settings, self.words = settings, words
        self._sources = [" ".join(s.split()) for s in sources]
        self._denied: set[str] = set()
        self._masked: set[str] = set()
        self._quoted: set[str] = set()

    def sentence(self, text: str) -> str:
        """One sentence, screened."""
        s = self.settings
        if s.deny_words_action != "off" and (hits := self.words.find(text)):
            self._denied.update(h.group().lower() for h in hits)
            if s.deny_words_action == "mask":
                text = self.words.mask(text)
        if s.pii == "off":
            return text
        found = find_pii(text, s.pii_region)
        quoted = [m for m in found if not s.pii_strict and self._in_sources(m.text)]
        self._quoted.update(m.kind for m in quoted)
        others = [m for m in found if m not in quoted]
        self._masked.update(m.kind for m in others)
        return mask_pii(text, others) if others and s.pii == "mask" else text

    def text(self, text: str) -> str:
        """A whole text, screened sentence by sentence (what streaming produces piece by piece)."""
        return "".join(self.sentence(part) for part in sentences(text))

    def _in_sources(self, span: str) -> bool:
        needle = " ".join(span.split())
        return any(needle in source for source in self._sources)

    def decisions(self) -> list[GuardDecision]:
        """What was found: denied words, PII masked (or flagged), PII shown because the sources hold it."""
        s, out = self.settings, []
        if self._denied:
            action = {"block": "blocked", "mask": "masked"}.get(s.deny_words_action, "flagged")
            out.append(
                GuardDecision(
                    "deny_words",
                    "output",
                    action,
                    "answer contains a denied word or phrase",
                    targets=sorted(self._denied),
                )
            )
        if self._masked:
            action = {"block": "blocked", "mask": "masked"}.get(s.pii, "flagged")
            detail = "PII not found in the sources" + (" (strict mode: all PII)" if s.pii_strict else "")
            out.append(GuardDecision("pii", "output", action, detail, targets=sorted(self._masked)))
        if self._quoted:
            detail = "PII quoted from the caller's own sources, shown as written (guard.pii_strict masks it)"
            out.append(GuardDecision("pii", "output", "flagged", detail, targets=sorted(self._quoted)))
        return out


class ReleaseBuffer:
    """Holds streamed text until a sentence is complete, then releases it screened.

    ``feed`` takes the next piece and passes complete sentences, screened, to ``emit``; ``flush``
    releases the rest at the end. ``released`` is everything emitted, joined."""

    def __init__(self, screen: Callable[[str], str], emit: Callable[[str], None]) -> None:
        self.screen, self.emit = screen, emit
        self._pending = ""
        self.released = ""

    def feed(self, piece: str) -> None:
        self._pending += piece
        # Only a sentence end with text after it is final: one at the very end may still grow
        # (". " then more spaces), and the sentences must be cut exactly as in the whole text.
        ends = [m.end() for m in _SENTENCE_END.finditer(self._pending) if m.end() < len(self._pending)]
        if ends:
            self._release(self._pending[: ends[-1]])
            self._pending = self._pending[ends[-1] :]

    def flush(self) -> None:
        if self._pending:
            self._release(self._pending)
            self._pending = ""

    def _release(self, text: str) -> None:
        out = "".join(self.screen(part) for part in sentences(text))
        if out:
            self.released += out
            self.emit(out)
