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


class FilterError(GroundworkError):
    """A metadata filter expression could not be parsed or names an unknown field."""


class ModelMismatchError(GroundworkError):
    """The knowledge base was built with a different embedding model than the one configured."""


class StoreError(GroundworkError):
    """The index on disk is missing, unreadable, or was written by an incompatible version."""
