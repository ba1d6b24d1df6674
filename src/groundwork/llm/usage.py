"""Token usage of the LLM calls made while one answer is written.

``metered()`` opens a meter for the current context (thread or task); every backend call inside it
reports its tokens with ``report_usage``: the server's own count where the API returns one
(OpenAI-compatible ``usage``, Bedrock Converse ``usage``), else the model's tokenizer (local
transformers) or the characters/4 estimate. A meter is a ``contextvars.ContextVar``, so concurrent
answers on other threads never mix their counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class TokenMeter:
    """Tokens reported so far: ``prompt`` (input) and ``completion`` (output) tokens over ``calls`` calls."""

    prompt: int = 0
    completion: int = 0
    calls: int = 0


_meter: ContextVar[TokenMeter | None] = ContextVar("groundwork_token_meter", default=None)


def report_usage(prompt_tokens: int, completion_tokens: int) -> None:
    """Add one LLM call's tokens to the open meter (nothing happens outside ``metered``)."""
    meter = _meter.get()
    if meter is not None:
        meter.prompt += max(0, int(prompt_tokens))
        meter.completion += max(0, int(completion_tokens))
        meter.calls += 1


@contextmanager
def metered() -> Iterator[TokenMeter]:
    """A fresh meter for the calls made inside the ``with`` block (nested blocks count separately)."""
    meter = TokenMeter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)
