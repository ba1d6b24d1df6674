"""The ChatModel protocol: the one interface every LLM backend implements.

Generators, the LLM reranker, query decomposition, follow-up rewriting and the LLM judge all talk to
an LLM through this protocol, so each backend (OpenAI-compatible, Bedrock, local transformers) is
written once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}

CHARS_PER_TOKEN = 4.0  # estimate for remote models whose tokenizer we do not have (OpenAI's rule of thumb)


def estimate_tokens(text: str) -> int:
    """Token estimate for remote models: ceil(characters / 4). Errs high on code and non-English text."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@runtime_checkable
class ChatModel(Protocol):
    """An LLM that continues a chat.

    ``model_id`` names the backend and model (e.g. ``openai:gpt-4o-mini``); ``count_tokens`` counts
    with the model's tokenizer, or estimates (see :func:`estimate_tokens`) for remote models.
    ``complete`` and ``stream`` raise :class:`groundwork.errors.GeneratorError` once retries are spent.
    """

    model_id: str
    context_window: int

    def count_tokens(self, text: str) -> int: ...

    def complete(self, messages: Sequence[Message], max_tokens: int | None = None) -> str:
        """The model's reply to ``messages`` (at most ``max_tokens`` tokens). Raises GeneratorError."""
        ...

    def stream(self, messages: Sequence[Message], max_tokens: int | None = None) -> Iterator[str]:
        """The reply as it is produced; the pieces concatenate to what ``complete`` returns. Raises GeneratorError."""
        ...
