"""Guardrails on input, retrieved context and output: prompt injection, denied topics and words,
PII, and the contextual grounding check."""

from groundwork.guard.guardrails import REFUSAL, Guardrails

__all__ = ["REFUSAL", "Guardrails"]
