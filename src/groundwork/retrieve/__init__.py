"""Retrieve stage: BM25, dense and hybrid retrieval with rank fusion and metadata pre-filters."""

from groundwork.retrieve.fusion import convex_fusion, rrf_fusion
from groundwork.retrieve.retriever import Retriever

__all__ = ["Retriever", "convex_fusion", "rrf_fusion"]
