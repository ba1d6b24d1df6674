"""The Generator protocol: question + numbered context in, answer with ``[n]`` citations out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from groundwork.answer.context import ContextChunk

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


@runtime_checkable
class Generator(Protocol):
    """Writes an answer from context. ``on_token`` (optional) receives the text as it is produced;
    the pieces concatenate to ``Generation.text``. ``count_tokens`` counts with the generator's
    tokenizer, so the context budget is measured in the generator's own tokens."""

    name: str
    model_id: str

    def count_tokens(self, text: str) -> int: ...

    def generate(
        self, question: str, context: Sequence[ContextChunk], on_token: TokenCallback | None = None
    ) -> Generation: ...
