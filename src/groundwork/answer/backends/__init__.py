"""LLM backends behind the ChatModel protocol; ``make_chat_model`` builds the configured one."""

from __future__ import annotations

from groundwork.answer.chat import ChatModel
from groundwork.config import GeneratorSettings
from groundwork.errors import ConfigError


def make_chat_model(settings: GeneratorSettings) -> ChatModel:
    """The configured backend. Imports its library lazily, so the default needs none of them.

    Raises ConfigError when a required setting (model, model_path) is missing.
    """
    if settings.backend == "openai":
        from groundwork.answer.backends.openai_chat import OpenAIChat

        return OpenAIChat(settings)
    if settings.backend == "bedrock":
        from groundwork.answer.backends.bedrock import BedrockChat

        return BedrockChat(settings)
    if settings.backend == "transformers":
        from groundwork.answer.backends.local import TransformersChat

        return TransformersChat(settings)
    raise ConfigError(f"generator.backend '{settings.backend}' has no chat model; use openai, bedrock or transformers")
