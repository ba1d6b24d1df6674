"""Any OpenAI-compatible Chat Completions server (vLLM, Ollama, llama.cpp, LM Studio, OpenAI),
through the official ``openai`` client, which does the retries with exponential backoff on
connection errors, timeouts, 408/409/429 and 5xx (``max_retries``)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import openai

from groundwork.config import GeneratorSettings
from groundwork.errors import ConfigError, GeneratorError
from groundwork.llm.chat import Message, ToolCall, ToolReply, estimate_tokens
from groundwork.llm.usage import report_usage


class OpenAIChat:
    """Chat Completions client. The API key is read from the environment variable named by
    ``settings.api_key_env`` (never from a setting, never logged); local servers accept any key."""

    def __init__(self, settings: GeneratorSettings) -> None:
        if not settings.model:
            raise ConfigError(
                "generator.model is required for the openai backend (e.g. 'gpt-4o-mini' or the served model name)"
            )
        self.settings = settings
        self.model_id = f"openai:{settings.model}"
        self.context_window = settings.context_window
        key = os.environ.get(settings.api_key_env) or ("unused" if settings.base_url else None)
        if key is None:
            raise ConfigError(
                f"the openai backend needs an API key in ${settings.api_key_env}, or generator.base_url for a local server"
            )
        self.client = openai.OpenAI(
            api_key=key, base_url=settings.base_url, timeout=settings.timeout_s, max_retries=settings.max_retries
        )

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _args(self, messages: Sequence[Message], max_tokens: int | None) -> dict:
        return {
            "model": self.settings.model,
            "messages": list(messages),
            "max_tokens": max_tokens or self.settings.max_tokens,
            "temperature": self.settings.temperature,
        }

    def complete(self, messages: Sequence[Message], max_tokens: int | None = None) -> str:
        try:
            resp = self.client.chat.completions.create(**self._args(messages, max_tokens))
        except openai.APIError as exc:
            raise _error(exc) from exc
        if not resp.choices:
            raise GeneratorError("openai", "the server returned no choices")
        text = resp.choices[0].message.content or ""
        self._report(messages, text, resp.usage)
        return text

    def complete_tools(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]],
        tool_choice: Any = None,
        max_tokens: int | None = None,
    ) -> ToolReply:
        """One Chat Completions call with ``tools`` (and ``tool_choice`` when given), passed through as
        the OpenAI API defines them. Raises GeneratorError."""
        args: dict[str, Any] = self._args(messages, max_tokens)  # type: ignore[arg-type]
        if tools:
            args["tools"] = list(tools)
            if tool_choice is not None:
                args["tool_choice"] = tool_choice
        try:
            resp = self.client.chat.completions.create(**args)
        except openai.APIError as exc:
            raise _error(exc) from exc
        if not resp.choices:
            raise GeneratorError("openai", "the server returned no choices")
        msg = resp.choices[0].message
        calls = [
            ToolCall(c.id, c.function.name, c.function.arguments or "")
            for c in (msg.tool_calls or [])
            if getattr(c, "function", None) is not None
        ]
        used = resp.usage.completion_tokens if resp.usage else estimate_tokens(msg.content or "")
        self._report(messages, msg.content or "", resp.usage)  # an agent's tool calls are metered too
        return ToolReply(msg.content or "", calls, used)

    def stream(self, messages: Sequence[Message], max_tokens: int | None = None) -> Iterator[str]:
        pieces: list[str] = []
        usage = None
        # include_usage: the server sends the call's token counts in a last chunk without choices
        # (OpenAI, vLLM, Ollama, llama.cpp); a server that sends none is counted by estimate.
        args = self._args(messages, max_tokens) | {"stream_options": {"include_usage": True}}
        try:
            for event in self.client.chat.completions.create(**args, stream=True):
                usage = getattr(event, "usage", None) or usage
                if event.choices and event.choices[0].delta.content:
                    pieces.append(event.choices[0].delta.content)
                    yield event.choices[0].delta.content
        except openai.APIError as exc:
            raise _error(exc) from exc
        self._report(messages, "".join(pieces), usage)

    def _report(self, messages: Sequence[Message], reply: str, usage: object) -> None:
        """The server's ``usage`` when it sent one, else the characters/4 estimate of both sides."""
        prompt, completion = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
        if prompt is None or completion is None:
            prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
            completion = estimate_tokens(reply)
        report_usage(prompt, completion)


def _error(exc: openai.APIError) -> GeneratorError:
    status = getattr(exc, "status_code", None)
    retryable = not isinstance(
        exc, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError, openai.BadRequestError)
    )
    what = f"HTTP {status}" if status else type(exc).__name__
    return GeneratorError("openai", f"{what}: {exc.message if hasattr(exc, 'message') else exc}", retryable)
