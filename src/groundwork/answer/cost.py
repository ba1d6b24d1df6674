"""The cost of an answer's tokens, from the ``pricing`` table of the settings (USD per 1,000 tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from groundwork.config import PriceSettings
from groundwork.types import TokenUsage


def price_of(model_id: str, pricing: Mapping[str, PriceSettings]) -> PriceSettings | None:
    """The price of ``model_id`` (``backend:model``): listed under the full id or under the model name
    alone (``gpt-4o-mini`` prices ``openai:gpt-4o-mini``); None when unlisted."""
    return pricing.get(model_id) or pricing.get(model_id.split(":", 1)[-1])


def cost_usd(usage: TokenUsage, model_id: str, pricing: Mapping[str, PriceSettings]) -> float:
    """prompt_tokens / 1000 x prompt_per_1k + completion_tokens / 1000 x completion_per_1k (USD);
    0 for an unlisted model."""
    price = price_of(model_id, pricing)
    if price is None:
        return 0.0
    cost = usage.prompt_tokens / 1000 * price.prompt_per_1k + usage.completion_tokens / 1000 * price.completion_per_1k
    return round(cost, 8)
