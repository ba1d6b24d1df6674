"""The Generator protocol: question + numbered context in, answer with ``[n]`` citations out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from groundwork.answer.context import ContextChunk


@dataclass
class Generation:
    """``text`` cites context chunks as ``[n]``; ``cited`` lists those n in order of first use."""

    text: str
    abstained: bool
    cited: list[int] = field(default_factory=list)
    evidence_score: float | None = None  # the score the abstention decision was made on


@runtime_checkable
class Generator(Protocol):
    name: str

    def generate(self, question: str, context: Sequence[ContextChunk]) -> Generation: ...
