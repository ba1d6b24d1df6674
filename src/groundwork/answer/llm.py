"""LLM generators: the grounded-answer prompt over numbered context, a citation check, and fallback.

Context layout (Liu et al. 2023, "Lost in the Middle"): models use the start and end of a long context
best, so chunks are placed with the strongest at the edges: ranks 1, 3, 5, ... then ..., 6, 4, 2. Each
chunk keeps its number n (its relevance rank) and is labelled ``[n] source, heading / page``. Chunks are
quoted as data between markers; the system prompt tells the model never to follow instructions found
inside them, and the injection guardrail flags (or masks) such text before it gets here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from groundwork.answer.citations import CitationStreamFilter, check_citations, cited_numbers
from groundwork.answer.extractive import ABSTAIN_MESSAGE
from groundwork.answer.generator import Generation, Generator, TokenCallback
from groundwork.errors import GeneratorError
from groundwork.llm.chat import ChatModel
from groundwork.llm.prompts import PromptTemplate, load_prompt
from groundwork.types import ContextChunk, page_label

_ABSTAIN = re.compile(
    r"\b(could not|cannot|can't|couldn't|unable to) find\b.{0,40}\b(indexed documents|context|information)", re.I
)


def edge_order(context: Sequence[ContextChunk]) -> list[ContextChunk]:
    """Strongest chunks at both edges: [1, 3, 5, ..., 6, 4, 2] for chunks ranked 1..n."""
    ranked = sorted(context, key=lambda c: c.n)
    return ranked[0::2] + ranked[1::2][::-1]


def chunk_label(c: ContextChunk) -> str:
    """``[n] source, heading path, p. N`` - what the model (and a reader of the prompt) sees."""
    ch = c.hit.chunk
    parts = [ch.source]
    if ch.heading:
        parts.append(ch.heading)
    if ch.page:
        parts.append(page_label(ch.doc_id, ch.source, ch.page))
    return f"[{c.n}] " + ", ".join(parts)


def format_context(context: Sequence[ContextChunk]) -> str:
    blocks = []
    for c in edge_order(context):
        text = c.text.replace("</context>", "</ context>")  # a chunk cannot close the data block
        blocks.append(f'{chunk_label(c)}\n"""\n{text}\n"""')
    return "\n\n".join(blocks)


def is_abstention(text: str) -> bool:
    """True when the model said it cannot find the answer (the template's refusal, or a paraphrase)."""
    head = text.strip()[:200]
    return head.startswith(ABSTAIN_MESSAGE[:30]) or bool(_ABSTAIN.search(head))


class LLMGenerator:
    """Answers with a chat model and the grounded-answer prompt template.

    After generation, every ``[n]`` must name a supplied chunk: invalid markers are removed and
    counted (``Generation.invalid_citations``); an answer with no valid citation that is not an
    abstention is flagged ``no_valid_citation``. Raises GeneratorError when the backend fails.
    """

    name = "llm"

    def __init__(
        self, chat: ChatModel, prompt: str | PromptTemplate = "grounded-answer", max_tokens: int = 512
    ) -> None:
        self.chat = chat
        self.prompt = prompt if isinstance(prompt, PromptTemplate) else load_prompt(prompt)
        self.max_tokens = max_tokens
        self.model_id = chat.model_id
        self.name = chat.model_id.split(":", 1)[0]

    def count_tokens(self, text: str) -> int:
        return self.chat.count_tokens(text)

    def context_budget(self, question: str) -> int:
        """Tokens left for context: the model's window minus the prompt, the question and the answer."""
        overhead = sum(self.count_tokens(m["content"]) for m in self.prompt.render(context="", question=question))
        return max(0, self.chat.context_window - self.max_tokens - overhead - 16)

    def messages(self, question: str, context: Sequence[ContextChunk]) -> list[dict[str, str]]:
        return self.prompt.render(context=format_context(context), question=question)

    def generate(
        self, question: str, context: Sequence[ContextChunk], on_token: TokenCallback | None = None
    ) -> Generation:
        if not context:
            if on_token:
                on_token(ABSTAIN_MESSAGE)
            return Generation(ABSTAIN_MESSAGE, abstained=True, prompt=self.prompt.ref, model_id=self.model_id)
        messages = self.messages(question, context)
        valid = {c.n for c in context}
        if on_token is None:
            raw = self.chat.complete(messages, self.max_tokens)
        else:
            filt = CitationStreamFilter(valid)
            pieces = []
            for piece in self.chat.stream(messages, self.max_tokens):
                pieces.append(piece)
                shown = filt.feed(piece)
                if shown:
                    on_token(shown)
            if rest := filt.flush():
                on_token(rest)
            raw = "".join(pieces)
        text, removed = check_citations(raw.strip(), valid)
        abstained = is_abstention(text)
        cited = cited_numbers(text)
        flags = ["no_valid_citation"] if not cited and not abstained else []
        if removed:
            flags.append("invalid_citations_removed")
        return Generation(
            text,
            abstained=abstained,
            cited=[] if abstained else cited,
            invalid_citations=removed,
            flags=flags,
            prompt=self.prompt.ref,
            model_id=self.model_id,
        )


class FallbackGenerator:
    """Tries ``primary``; when it raises GeneratorError (timeout, 5xx, refused connection), answers
    with ``fallback`` and says so at the start of the answer and in ``Generation.notice``."""

    def __init__(self, primary: Generator, fallback: Generator) -> None:
        self.primary, self.fallback = primary, fallback
        self.name, self.model_id = primary.name, primary.model_id

    def count_tokens(self, text: str) -> int:
        return self.primary.count_tokens(text)

    def context_budget(self, question: str) -> int:
        return self.primary.context_budget(question)

    @property
    def prompt(self) -> PromptTemplate | None:
        return self.primary.prompt

    def generate(
        self, question: str, context: Sequence[ContextChunk], on_token: TokenCallback | None = None
    ) -> Generation:
        try:
            return self.primary.generate(question, context, on_token)
        except GeneratorError as exc:
            notice = (
                f"The {exc.backend} generator was unavailable ({exc.reason}); "
                f"this answer was written by the {self.fallback.name} fallback."
            )
            if on_token:  # streamed exactly as returned: the notice, then the fallback's answer
                on_token(f"({notice}) ")
            gen = self.fallback.generate(question, context, on_token)
            gen.notice = notice
            gen.text = f"({notice}) {gen.text}"
            gen.flags.append("fallback")
            return gen
