"""The Generator protocol: question + numbered context in, answer with ``[n]`` citations out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from groundwork.llm.prompts import PromptTemplate
from groundwork.types import ContextChunk

TokenCallback = Callable[[str], None]


@dataclass
class Generation:
    """``text`` cites context chunks as ``[n]``; ``cited`` lists those n in order of first use.

    ``invalid_citations`` counts markers removed because they named no supplied chunk; ``flags`` holds
    findings such as ``no_valid_citation``; ``prompt`` is the template reference (``id@version#hash``)
    and ``model_id`` the model that wrote the text; ``notice`` says when a fallback answered.
    """

    text: str
    abstained: bool
    cited: list[int] = field(default_factory=list)
    evidence_score: float | None = None  # the score the abstention decision was made on
    invalid_citations: int = 0
    flags: list[str] = field(default_factory=list)
    prompt: str | None = None
    model_id: str = ""
    notice: str | None = None


UNLIMITED_TOKENS = 1 << 30  # context_budget of a generator with no window of its own


@runtime_checkable
class Generator(Protocol):
    """Writes an answer from numbered context, citing it as ``[n]``.

    Every member is required (``KnowledgeBase`` checks a supplied generator against this protocol):
    ``name`` (short, e.g. ``extractive``), ``model_id`` (recorded in each answer), ``prompt`` (the
    template it renders, or None when it uses none), ``count_tokens`` (the generator's own tokenizer:
    the context budget is counted in its tokens) and ``context_budget`` (tokens of context that fit
    beside the prompt, the question and the answer; ``UNLIMITED_TOKENS`` when the model sets no limit).
    """

    name: str
    model_id: str

    @property
    def prompt(self) -> PromptTemplate | None:
        """The prompt template (its ``ref`` goes into the answer and the audit record), or None."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for this generator's model."""
        ...

    def context_budget(self, question: str) -> int:
        """Tokens of context that fit for ``question`` (never more than the model's window allows)."""
        ...

    def generate(
        self, question: str, context: Sequence[ContextChunk], on_token: TokenCallback | None = None
    ) -> Generation:
        """The answer. ``on_token`` (optional) receives the text as it is produced; the pieces
        concatenate to ``Generation.text``. Raises GeneratorError when an LLM backend fails."""
        ...
