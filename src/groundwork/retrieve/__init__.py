"""Retrieve stage: BM25, dense and hybrid retrieval with rank fusion and metadata pre-filters,
multi-hop decomposition, reranking, and follow-up rewriting."""

from groundwork.retrieve.fusion import convex_fusion, rrf_fusion
from groundwork.retrieve.pipeline import DocumentResult, PipelineResult, SearchPipeline
from groundwork.retrieve.retriever import Retriever

__all__ = ["DocumentResult", "PipelineResult", "Retriever", "SearchPipeline", "convex_fusion", "rrf_fusion"]
