"""Guardrails: the configured checks on the question (input), the retrieved chunks (context) and
the answer (output). Each is block / mask / flag / off (``GuardSettings``) and each finding becomes
a :class:`GuardDecision`, which the audit record keeps.

- input: question length (a longer question is refused before anything else reads it); deny words;
  denied topics; prompt injection (``guard.injection``: block or flag; patterns only, since every
  question is addressed to the assistant and the semantic signal would flag ordinary requests).
- context: prompt injection inside retrieved chunks, patterns and (``guard.injection_semantic``) the
  semantic signal (``groundwork.guard.injection``). ``guard.injection_context``: exclude (default:
  the chunk never reaches the generator; the decision's targets name it and the answer says a source
  was withheld), mask (the instruction-like spans are removed), flag (the chunk is kept, quoted as
  data, and its citation flagged).
- output: deny words; PII (emails, phones, cards, IBANs, SSNs, IPs); contextual grounding check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from groundwork.config import GuardSettings
from groundwork.guard.grounding import grounding_scores
from groundwork.guard.injection import InjectionDetector, InjectionMatch, find_injection, mask_injection
from groundwork.guard.output import OutputScreen
from groundwork.guard.pii import mask_pii
from groundwork.guard.topics import DeniedTopics, DenyWords
from groundwork.index.embedder import Embedder
from groundwork.types import ContextChunk, GuardDecision

REFUSAL = "I can't help with that request."


@runtime_checkable
class Guardrails(Protocol):
    """The checks an answer passes through. Nothing is raised: a decision with action 'blocked' is
    returned and the caller refuses (see ``groundwork.answer.pipeline``)."""

    def check_question(self, question: str) -> list[GuardDecision]:
        """Decisions on the question (input stage), before anything is retrieved."""
        ...

    def check_context(
        self, context: Sequence[ContextChunk]
    ) -> tuple[list[ContextChunk], list[GuardDecision], set[str]]:
        """(context to use, decisions, ids of flagged chunks) for the retrieved chunks. Chunks left
        out of the context are named by a decision with action ``excluded`` (its ``targets``: their
        chunk ids); the pipeline tells the reader that sources were withheld."""
        ...

    @property
    def blocks_output(self) -> bool:
        """Whether an output check may refuse the whole answer: then nothing is streamed before it ran."""
        ...

    def output_screen(self, sources: Sequence[str]) -> OutputScreen:
        """A screen for one answer (``sentence``, ``text``, ``decisions``) that masks what the output
        guards mask, knowing the context texts the answer may quote."""
        ...

    def check_answer(
        self, question: str, answer: str, context: Sequence[ContextChunk], abstained: bool
    ) -> list[GuardDecision]:
        """Decisions on the whole, screened answer (output stage): grounding and relevance."""
        ...

    def redact(self, text: str) -> str:
        """``text`` with all PII masked, for audit records and logs."""
        ...


class ConfiguredGuardrails:
    """The guardrails of ``GuardSettings``: each check block / mask / flag / off (see the module docstring)."""

    def __init__(self, settings: GuardSettings, embedder: Embedder) -> None:
        self.settings, self.embedder = settings, embedder
        self.topics = (
            DeniedTopics(embedder, settings.denied_topics, settings.topic_threshold)
            if settings.topic_action != "off"
            else None
        )
        self.words = DenyWords(settings.deny_words) if settings.deny_words_action != "off" else DenyWords([])
        # a threshold above 1 no cosine similarity reaches: patterns only, and nothing is embedded
        threshold = settings.injection_threshold if settings.injection_semantic else 2.0
        self.injection = InjectionDetector(embedder, threshold, settings.injection_margin)

    # -- input ---------------------------------------------------------------------------------------
    def check_question(self, question: str) -> list[GuardDecision]:
        s, out = self.settings, []
        if len(question) > s.max_question_chars:  # refused before any other check reads it
            return [
                GuardDecision(
                    "size",
                    "input",
                    "blocked",
                    f"question has {len(question)} characters; the limit is {s.max_question_chars}",
                )
            ]
        if hits := self.words.find(question):
            action = "blocked" if s.deny_words_action == "block" else "flagged"
            out.append(
                GuardDecision(
                    "deny_words",
                    "input",
                    action,
                    "question contains a denied word or phrase",
                    targets=sorted({h.group().lower() for h in hits}),
                )
            )
        if self.topics and (m := self.topics.match(question)):
            action = "blocked" if s.topic_action == "block" else "flagged"
            out.append(
                GuardDecision(
                    "denied_topic", "input", action, f"question matches denied topic '{m[0]}'", round(m[1], 4), [m[0]]
                )
            )
        if s.injection != "off" and (inj := find_injection(question)):
            action = "blocked" if s.injection == "block" else "flagged"
            out.append(
                GuardDecision(
                    "prompt_injection",
                    "input",
                    action,
                    "instruction-like text in the question",
                    targets=sorted({m.pattern for m in inj}),
                )
            )
        return out

    # -- context -------------------------------------------------------------------------------------
    def check_context(
        self, context: Sequence[ContextChunk]
    ) -> tuple[list[ContextChunk], list[GuardDecision], set[str]]:
        """(context to use, decisions, ids of flagged chunks). With ``exclude`` the detected chunks are
        left out and the rest renumbered 1..n; the decision's action is ``excluded`` and its targets
        are their chunk ids (what the answer's notice counts)."""
        mode = self.settings.injection_context
        if mode == "off" or not context:
            return list(context), [], set()
        found = self.injection.find_many([c.text for c in context])
        hits = {c.hit.chunk.chunk_id: m for c, m in zip(context, found) if m}
        if not hits:
            return list(context), [], set()
        if mode == "exclude":
            kept = [c for c in context if c.hit.chunk.chunk_id not in hits]
            kept = [replace(c, n=i + 1) for i, c in enumerate(kept)]
        elif mode == "mask":
            kept = [
                replace(c, text=mask_injection(c.text, m)) if (m := hits.get(c.hit.chunk.chunk_id)) else c
                for c in context
            ]
        else:
            kept = list(context)
        return kept, [_context_decision(mode, hits)], set(hits)

    # -- output --------------------------------------------------------------------------------------
    @property
    def blocks_output(self) -> bool:
        """Whether an output check may refuse the whole answer (then it is released whole, at the end)."""
        s = self.settings
        return (s.deny_words_action == "block" and bool(self.words.words)) or "block" in (s.pii, s.grounding)

    def output_screen(self, sources: Sequence[str]) -> OutputScreen:
        """A screen for one answer whose context holds ``sources`` (see groundwork.guard.output)."""
        return OutputScreen(self.settings, self.words, sources)

    def check_answer(
        self, question: str, answer: str, context: Sequence[ContextChunk], abstained: bool
    ) -> list[GuardDecision]:
        """Checks of the whole (screened) answer: the contextual grounding and relevance scores."""
        s, out = self.settings, []
        if s.grounding != "off" and not abstained and context:
            g = grounding_scores(self.embedder, question, answer, [c.text for c in context])
            action = "blocked" if s.grounding == "block" else "flagged"
            if g.grounding < s.grounding_threshold:
                detail = f"grounding {g.grounding:.2f} < {s.grounding_threshold}"
                out.append(
                    GuardDecision("grounding", "output", action, detail, round(g.grounding, 4), list(g.unsupported))
                )
            if g.relevance < s.relevance_threshold:
                detail = f"relevance {g.relevance:.2f} < {s.relevance_threshold}"
                out.append(GuardDecision("relevance", "output", action, detail, round(g.relevance, 4)))
        return out

    def redact(self, text: str) -> str:
        """``text`` with every PII span masked, whatever the settings: for audit records and logs."""
        return mask_pii(text, region=self.settings.pii_region)


def mask_pii_for_ingest(text: str, region: str = "US") -> str:
    """Ingest-time masking (``guard.pii_at_ingest``): the index never holds the PII."""
    return mask_pii(text, region=region)


def _context_decision(mode: str, hits: dict[str, list[InjectionMatch]]) -> GuardDecision:
    """The one context decision: action, which signals fired, the best semantic score, chunk ids."""
    action = {"exclude": "excluded", "mask": "masked", "flag": "flagged"}[mode]
    signals = sorted({m.pattern for ms in hits.values() for m in ms})
    scores = [m.score for ms in hits.values() for m in ms if m.score is not None]
    outcome = {
        "exclude": "left out of the answer",
        "mask": "instruction-like spans removed",
        "flag": "quoted as data",
    }[mode]
    detail = f"instruction-like text in {len(hits)} retrieved chunk(s) ({', '.join(signals)}); {outcome}"
    return GuardDecision("prompt_injection", "context", action, detail, max(scores) if scores else None, sorted(hits))
