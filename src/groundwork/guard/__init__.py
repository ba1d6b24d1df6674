"""Guardrails on input, retrieved context and output: prompt injection, denied topics and words,
PII, and the contextual grounding check."""

from groundwork.guard.guardrails import REFUSAL, ConfiguredGuardrails, Guardrails

__all__ = ["REFUSAL", "ConfiguredGuardrails", "Guardrails"]
