"""Typed error hierarchy. Every error a user can cause says what was wrong and what to do."""

from __future__ import annotations


class GroundworkError(Exception):
    """Base class of every error Groundwork raises on purpose."""


class ConfigError(GroundworkError):
    """A setting is invalid; the message names the key."""


class LoaderError(GroundworkError):
    """A file could not be read into a document. ``path`` names the file, ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedFileError(LoaderError):
    """The file's extension has no loader; such files are skipped and reported, not failed."""


class RequestError(GroundworkError):
    """The caller's query, filter or request is invalid (unknown mode, empty query, bad rating, a
    value out of range). Boundaries report it as the caller's mistake: the CLI exits 2, the HTTP API
    answers 422 with the message."""


class FilterError(RequestError):
    """A metadata filter expression could not be parsed, is too complex, or names an unknown field."""


class QueryTimeoutError(GroundworkError):
    """A read ran past its time budget (``index.query_timeout_s``) and was cancelled. The HTTP API
    answers 503 with Retry-After; try a narrower filter or later."""


class ModelMismatchError(GroundworkError):
    """The knowledge base was built with a different embedding model than the one configured."""


class StoreError(GroundworkError):
    """The index on disk is missing, unreadable, or was written by an incompatible version."""


class GeneratorError(GroundworkError):
    """An LLM backend failed (timeout, refused connection, 5xx, malformed reply) after its retries.

    ``retryable`` is False for errors no retry can fix (bad credentials, unknown model).
    """

    def __init__(self, backend: str, reason: str, retryable: bool = True) -> None:
        super().__init__(f"{backend} generator failed: {reason}")
        self.backend = backend
        self.reason = reason
        self.retryable = retryable


class GuardrailBlocked(GroundworkError):
    """A guardrail with action 'block' refused the question; ``decision`` says which and why."""

    def __init__(self, decision: object, message: str) -> None:
        super().__init__(message)
        self.decision = decision


class QuotaExceeded(GroundworkError):
    """A tenant used its daily token quota (``quota.daily_tokens_per_tenant`` or ``quota.tenants``).
    ``limit`` and ``used`` are tokens; ``reset_at`` is when the quota resets (next UTC midnight, ISO
    8601); the HTTP API answers 429 with Retry-After."""

    def __init__(self, tenant: str | None, limit: int, used: int, reset_at: str, retry_after_s: int) -> None:
        who = f"tenant '{tenant}'" if tenant else "callers without a tenant"
        super().__init__(
            f"{who} used {used} of the {limit} tokens a day allowed (quota.daily_tokens_per_tenant / "
            f"quota.tenants); the quota resets at {reset_at} (UTC midnight)"
        )
        self.tenant, self.limit, self.used = tenant, limit, used
        self.reset_at, self.retry_after_s = reset_at, retry_after_s
