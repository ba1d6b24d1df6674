"""The answer pipeline: a question in, a cited answer (or an abstention, or a refusal) out.

Steps, each a method below: screen the question (input guardrails) -> rewrite a follow-up into a
stand-alone question -> retrieve -> assemble the context within the token budget -> screen the
context -> generate -> number the citations -> screen the answer (output guardrails). A blocked
question is refused before anything is retrieved.

Nothing leaves before the output guardrails saw it: streamed text goes through the citation filter
(final numbering) and then the output screen one sentence at a time (``groundwork.guard.output``), so
the streamed pieces join to exactly the final answer. When an output check may refuse the whole
answer, the answer is released whole at the end instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from groundwork.answer.citations import CitationStreamFilter, renumber
from groundwork.answer.context import assemble_context
from groundwork.answer.generator import Generation, Generator, TokenCallback
from groundwork.config import AnswerSettings
from groundwork.filters import Filter
from groundwork.guard import REFUSAL, Guardrails
from groundwork.guard.output import OutputScreen, ReleaseBuffer
from groundwork.llm.chat import ChatModel, Message
from groundwork.llm.usage import metered
from groundwork.retrieve import SearchPipeline
from groundwork.retrieve.conversation import rewrite_question
from groundwork.types import Access, Answer, Citation, ContextChunk, TokenUsage


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    timings[stage] = (time.perf_counter() - t) * 1000


@dataclass
class Question:
    """What ``AnswerPipeline.run`` is asked: the question, retrieval options, the conversation so far,
    the caller's access (None: every document) and where streamed text goes."""

    text: str
    mode: str | None = None
    top_k: int | None = None
    filter: str | Filter | None = None
    history: Sequence[Message] | None = None
    on_token: TokenCallback | None = None
    access: Access | None = None


class AnswerPipeline:
    """Runs the steps of the module docstring. Raises FilterError / RequestError for a bad filter,
    mode or query, StoreError without an index, GeneratorError when the LLM fails and
    ``generator.fallback`` is 'none'."""

    def __init__(
        self,
        search: SearchPipeline,
        generator: Generator,
        guardrails: Guardrails,
        chat: ChatModel | None,
        settings: AnswerSettings,
    ) -> None:
        self.search, self.generator, self.guardrails, self.chat = search, generator, guardrails, chat
        self.settings = settings

    def run(self, q: Question, index_version: int | None) -> Answer:
        """The answer with ``timings_ms`` per stage (rewrite, embed, retrieve, rerank, assemble,
        generate, guard; ``total`` is added by the caller) and ``usage``: the tokens every LLM call
        of the run reported (``groundwork.llm.usage``); without an LLM call (the extractive generator,
        a refused question) the question and the context it read, and the answer, counted with the
        generator's tokenizer (the embedding model's, for the extractive one). ``usage.cost_usd`` is
        left to the caller (it knows the price table)."""
        read: list[int] = []  # tokens of the context the generator read
        with metered() as meter:
            answer = self._run(q, index_version, read)
        if meter.calls:
            answer.usage = TokenUsage(meter.prompt, meter.completion, source="backend")
        else:
            count = self.generator.count_tokens
            prompt = count(answer.search_query or answer.question) + sum(read)
            answer.usage = TokenUsage(prompt, count(answer.answer), source="tokenizer")
        return answer

    def _run(self, q: Question, index_version: int | None, read: list[int]) -> Answer:
        prompt = self.generator.prompt
        answer = Answer(
            q.text,
            "",
            False,
            [],
            {},
            answer_id=uuid.uuid4().hex,
            model_id=self.generator.model_id,
            prompt=prompt.ref if prompt is not None else None,
            index_version=index_version,
        )
        if self._screen_question(answer, q.on_token):
            return answer
        with _timed(answer.timings_ms, "rewrite"):
            answer.search_query = rewrite_question(q.text, q.history, self.chat) if q.history else q.text
        context, flagged = self._retrieve_context(answer, q)
        read.extend(c.tokens for c in context)
        screen = self.guardrails.output_screen([c.text for c in context])
        whole = q.on_token is None or self.guardrails.blocks_output
        with _timed(answer.timings_ms, "generate"):
            gen, streamed = self._generate(answer.search_query, context, None if whole else q.on_token, screen)
        self._cite(answer, gen, context, flagged)
        with _timed(answer.timings_ms, "guard"):
            self._screen_answer(answer, streamed if streamed is not None else screen.text(gen.text), context, screen)
        self._note_withheld(answer, None if whole else q.on_token)
        if whole and q.on_token is not None:
            q.on_token(answer.answer)  # released whole, after every check
        return answer

    def _screen_question(self, answer: Answer, on_token: TokenCallback | None) -> bool:
        """Input guardrails; True when the question is refused (the refusal is the answer)."""
        answer.guardrails += self.guardrails.check_question(answer.question)
        if not any(d.action == "blocked" for d in answer.guardrails):
            return False
        answer.answer, answer.abstained, answer.blocked = REFUSAL, True, True
        if on_token:
            on_token(REFUSAL)
        return True

    def _retrieve_context(self, answer: Answer, q: Question) -> tuple[list[ContextChunk], set[str]]:
        """Search, then the numbered context within the budget, screened; (context, flagged chunk ids)."""
        result = self.search.search(answer.search_query, q.mode, q.top_k or self.settings.top_k, q.filter, q.access)
        answer.hits, answer.sub_questions = result.hits, result.sub_questions
        answer.timings_ms.update(result.timings_ms)
        with _timed(answer.timings_ms, "assemble"):
            budget = min(self.settings.context_tokens, self.generator.context_budget(answer.search_query))
            context = assemble_context(result.hits, self.generator.count_tokens, budget, self.settings.dedup_similarity)
            context, decisions, flagged = self.guardrails.check_context(context)
        answer.guardrails += decisions
        return context, flagged

    def _generate(
        self, question: str, context: list[ContextChunk], on_token: TokenCallback | None, screen: OutputScreen
    ) -> tuple[Generation, str | None]:
        """(generation, the text streamed to ``on_token`` or None). Streamed text passes the citation
        filter (the reader sees the final numbering [1], [2], ... in order of use) and then the output
        screen, one complete sentence at a time."""
        if on_token is None:
            return self.generator.generate(question, context, None), None
        release = ReleaseBuffer(screen.sentence, on_token)
        citations = CitationStreamFilter({c.n for c in context}, renumber=True)

        def shown(piece: str) -> None:
            if text := citations.feed(piece):
                release.feed(text)

        gen = self.generator.generate(question, context, shown)
        release.feed(citations.flush())
        release.flush()
        return gen, release.released

    @staticmethod
    def _cite(answer: Answer, gen: Generation, context: list[ContextChunk], flagged: set[str]) -> None:
        """Copy the generation's findings to the answer; number its citations 1, 2, ... in order of use."""
        answer.model_id = gen.model_id or answer.model_id
        answer.prompt = gen.prompt if gen.prompt is not None else answer.prompt
        answer.abstained, answer.evidence_score, answer.notice = gen.abstained, gen.evidence_score, gen.notice
        answer.flags, answer.invalid_citations = list(gen.flags), gen.invalid_citations
        by_n = {c.n: c for c in context}
        gen.text, mapping = renumber(gen.text, set(by_n))  # what the stream filter showed, numbered alike
        for old, new in mapping.items():
            c = by_n[old]
            ch = c.hit.chunk
            answer.citations.append(
                Citation(
                    n=new,
                    doc_id=ch.doc_id,
                    chunk_id=ch.chunk_id,
                    source=ch.source,
                    score=c.hit.score,
                    text=c.text,
                    heading=ch.heading,
                    page=ch.page,
                    title=ch.title,
                    flags=["prompt_injection"] if ch.chunk_id in flagged else [],
                )
            )

    def _screen_answer(self, answer: Answer, text: str, context: list[ContextChunk], screen: OutputScreen) -> None:
        """The screened text, and the output decisions; a blocked answer becomes the refusal, without
        citations (it was not released: see ``blocks_output``)."""
        claims = text.removeprefix(f"({answer.notice}) ") if answer.notice else text  # the notice is no claim
        decisions = screen.decisions() + self.guardrails.check_answer(
            answer.search_query, claims, context, answer.abstained
        )
        answer.guardrails += decisions
        if any(d.action == "blocked" and d.stage == "output" for d in decisions):
            text, answer.abstained, answer.blocked, answer.citations = REFUSAL, True, True, []
        answer.answer = text

    @staticmethod
    def _note_withheld(answer: Answer, on_token: TokenCallback | None) -> None:
        """When guardrails left retrieved chunks out (prompt injection), the answer says so: a sentence
        at the end of its text (streamed too), in ``notice``, and the flag ``source_withheld``."""
        withheld = {t for d in answer.guardrails if d.stage == "context" and d.action == "excluded" for t in d.targets}
        if not withheld or answer.blocked:
            return
        n = len(withheld)
        note = (
            f"{n} retrieved source{' was' if n == 1 else 's were'} withheld: "
            f"{'it contains' if n == 1 else 'they contain'} instructions aimed at the assistant, a possible prompt injection."
        )
        answer.answer = f"{answer.answer}\n\n({note})"
        answer.notice = f"{answer.notice} {note}" if answer.notice else note
        answer.flags.append("source_withheld")
        if on_token:
            on_token(f"\n\n({note})")
