"""Evaluate stage: datasets (BEIR, MultiHop-RAG, Groundwork eval sets), retrieval and answer metrics,
configuration comparison and the regression gate."""
