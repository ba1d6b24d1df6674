"""The ChatModel protocol: the one interface every LLM backend implements.

Generators, the LLM reranker, query decomposition, follow-up rewriting and the LLM judge all talk to
an LLM through this protocol, so each backend (OpenAI-compatible, Bedrock, local transformers) is
written once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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


@dataclass
class ToolCall:
    """One tool call the model asked for (OpenAI Chat Completions ``tool_calls[i]``): ``arguments`` is
    the JSON text exactly as the model wrote it (it may be invalid JSON; the caller checks)."""

    id: str
    name: str
    arguments: str


@dataclass
class ToolReply:
    """A model turn that may call tools: text (possibly empty), tool calls, completion tokens used."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    completion_tokens: int = 0


@runtime_checkable
class ToolChatModel(Protocol):
    """A ChatModel that can call tools (OpenAI's ``tools`` / ``tool_choice``, see
    https://platform.openai.com/docs/api-reference/chat/create). ``messages`` may hold assistant
    messages with ``tool_calls`` and ``tool`` messages, hence ``dict[str, Any]``."""

    model_id: str

    def complete_tools(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]],
        tool_choice: Any = None,
        max_tokens: int | None = None,
    ) -> ToolReply:
        """The model's next turn. Raises GeneratorError once retries are spent."""
        ...
