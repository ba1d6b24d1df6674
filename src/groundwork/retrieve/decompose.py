"""Multi-hop query decomposition: split a question that needs several pieces of evidence into
sub-questions, so each piece is retrieved on its own (the union is then fused and answered over).

- ``heuristic`` (no model): split at clause boundaries that join two claims about different sources
  or entities - ", while", ", whereas", "; ", ", and does/did/is/was ...", " as does", " and is also",
  and the "Between A and B," frame of temporal comparisons. Parts shorter than four words are dropped.
  Good for comparison questions ("Did A report X, while B reported Y?"); it cannot split an inference
  question whose parts are not joined by such a connective.
- ``llm``: the configured chat model writes the sub-questions (prompt template ``decompose``).
The original question is always searched too, so decomposition can only add evidence.
"""

from __future__ import annotations

import re
from typing import Protocol

from groundwork.errors import GeneratorError
from groundwork.llm.chat import ChatModel
from groundwork.llm.prompts import load_prompt

_SPLIT = re.compile(
    r",?\s+(?:while|whereas)\s+|;\s+|,\s+and\s+(?=(?:does|did|do|is|was|are|were|has|have|had|can|will|would)\b)"
    r"|,?\s+as\s+(?=does\b|did\b|do\b)|,?\s+and\s+(?=(?:is|was|has|had)\s+also\b)|,?\s+and\s+(?=also\b)",
    re.I,
)
_BETWEEN = re.compile(r"^\s*between\s+(.+?),?\s+and\s+(.+?),\s+(.+)$", re.I | re.S)


class Decomposer(Protocol):
    name: str

    def decompose(self, question: str) -> list[str]:
        """Sub-questions (not including the question itself); [] when it does not split."""
        ...


class HeuristicDecomposer:
    name = "heuristic"

    def __init__(self, max_parts: int = 4) -> None:
        self.max_parts = max_parts

    def decompose(self, question: str) -> list[str]:
        parts: list[str] = []
        if m := _BETWEEN.match(question):
            a, b, rest = m.groups()
            parts = [f"{a} {rest}", f"{b} {rest}"]
        else:
            parts = _SPLIT.split(question)
        parts = [" ".join(p.strip(" ,;?").split()) for p in parts]
        parts = [p for p in parts if len(p.split()) >= 4]
        return parts[: self.max_parts] if len(parts) > 1 else []


class LLMDecomposer:
    name = "llm"

    def __init__(self, chat: ChatModel, max_parts: int = 4) -> None:
        self.chat, self.max_parts = chat, max_parts
        self.prompt = load_prompt("decompose")
        self.fallback = HeuristicDecomposer(max_parts)

    def decompose(self, question: str) -> list[str]:
        try:
            reply = self.chat.complete(self.prompt.render(question=question, max_parts=self.max_parts), max_tokens=200)
        except GeneratorError:
            return self.fallback.decompose(question)
        lines = [re.sub(r"^\s*(?:[-*]|\d+[.)])\s*", "", ln).strip() for ln in reply.splitlines()]
        lines = [ln for ln in lines if len(ln.split()) >= 3 and ln.lower() != question.lower().strip()]
        return lines[: self.max_parts] if len(lines) > 1 else []
