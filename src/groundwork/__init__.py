"""Groundwork: self-hosted retrieval-augmented generation.

Public API: :class:`KnowledgeBase`, the settings (:func:`load_settings`), and the dataclasses in
:mod:`groundwork.types`.
"""

from groundwork.config import Settings, load_settings
from groundwork.kb import KnowledgeBase
from groundwork.types import Answer, Chunk, Citation, Document, IngestReport, SearchHit

__version__ = "0.1.0"
__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "IngestReport",
    "KnowledgeBase",
    "SearchHit",
    "Settings",
    "load_settings",
    "__version__",
]
