"""Amazon Bedrock through the Converse / ConverseStream APIs (boto3), e.g. Amazon Nova Lite.

Credentials come from the standard AWS chain (environment, profile, instance role); botocore's
standard retry mode retries throttling and 5xx with backoff up to ``max_retries`` times.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from groundwork.config import GeneratorSettings
from groundwork.errors import ConfigError, GeneratorError
from groundwork.llm.chat import Message, estimate_tokens
from groundwork.llm.usage import report_usage

_FATAL = {"AccessDeniedException", "ValidationException", "ResourceNotFoundException", "UnrecognizedClientException"}


class BedrockChat:
    def __init__(self, settings: GeneratorSettings, client: Any = None) -> None:
        if not settings.model:
            raise ConfigError("generator.model is required for the bedrock backend (e.g. 'amazon.nova-lite-v1:0')")
        self.settings = settings
        self.model_id = f"bedrock:{settings.model}"
        self.context_window = settings.context_window
        cfg = Config(
            connect_timeout=settings.timeout_s,
            read_timeout=settings.timeout_s,
            retries={"max_attempts": settings.max_retries + 1, "mode": "standard"},
        )
        self.client = client or boto3.client("bedrock-runtime", region_name=settings.region, config=cfg)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _args(self, messages: Sequence[Message], max_tokens: int | None) -> dict[str, Any]:
        system = [{"text": m["content"]} for m in messages if m["role"] == "system"]
        turns = [{"role": m["role"], "content": [{"text": m["content"]}]} for m in messages if m["role"] != "system"]
        args: dict[str, Any] = {
            "modelId": self.settings.model,
            "messages": turns,
            "inferenceConfig": {
                "maxTokens": max_tokens or self.settings.max_tokens,
                "temperature": self.settings.temperature,
            },
        }
        if system:
            args["system"] = system
        return args

    def complete(self, messages: Sequence[Message], max_tokens: int | None = None) -> str:
        try:
            resp = self.client.converse(**self._args(messages, max_tokens))
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc) from exc
        blocks = resp.get("output", {}).get("message", {}).get("content", [])
        usage = resp.get("usage", {})  # Converse API: inputTokens, outputTokens
        report_usage(usage.get("inputTokens", 0), usage.get("outputTokens", 0))
        return "".join(b.get("text", "") for b in blocks)

    def stream(self, messages: Sequence[Message], max_tokens: int | None = None) -> Iterator[str]:
        try:
            resp = self.client.converse_stream(**self._args(messages, max_tokens))
            for event in resp["stream"]:
                if usage := event.get("metadata", {}).get("usage"):  # the stream's last event
                    report_usage(usage.get("inputTokens", 0), usage.get("outputTokens", 0))
                delta = event.get("contentBlockDelta", {}).get("delta", {})
                if delta.get("text"):
                    yield delta["text"]
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc) from exc


def _error(exc: Exception) -> GeneratorError:
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    return GeneratorError("bedrock", f"{code or type(exc).__name__}: {exc}", retryable=code not in _FATAL)
