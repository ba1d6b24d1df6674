"""KnowledgeBase: the Python API. The CLI (and later the HTTP server) are thin layers over it.

    >>> kb = KnowledgeBase("./.groundwork")
    >>> kb.ingest(["docs/"])                       # IngestReport
    >>> kb.search("how do I filter?", top_k=5)     # list[SearchHit]
    >>> kb.ask("how do I filter?")                 # Answer, with [n] citations
"""

from __future__ import annotations

import time
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from groundwork.answer import ExtractiveGenerator, Generator, assemble_context
from groundwork.answer.citations import renumber
from groundwork.config import Settings, load_settings
from groundwork.errors import StoreError
from groundwork.filters import Filter
from groundwork.index.embedder import SentenceTransformerEmbedder, load_embedder
from groundwork.index.lance import LanceStore
from groundwork.ingest.chunking import make_chunker
from groundwork.ingest.records import RecordOptions
from groundwork.ingest.sync import Ingestor, ProgressFn
from groundwork.retrieve import Retriever
from groundwork.types import Answer, Citation, DocumentInfo, IndexVersion, IngestReport, SearchHit


class KnowledgeBase:
    """A knowledge base in a folder.

    Args:
        path: the folder (default: ``settings.kb``, i.e. ``./.groundwork`` or ``$GROUNDWORK_KB``).
        settings: full settings; by default loaded from groundwork.toml and the environment.
        **overrides: dotted setting overrides, e.g. ``{"retrieval.top_k": 5}``.
    Raises:
        ConfigError: invalid settings. StoreError / ModelMismatchError: on first use of the index.
    """

    def __init__(self, path: str | Path | None = None, settings: Settings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = load_settings(**overrides)
        elif overrides:
            settings = load_settings(**{**_flatten(settings.model_dump()), **overrides})
        if path is not None:
            settings = settings.model_copy(update={"kb": Path(path)})
        self.settings = settings
        self.path = Path(settings.kb)

    @cached_property
    def embedder(self) -> SentenceTransformerEmbedder:
        return load_embedder(self.settings.embedder, self.settings.embedder.cache_dir or self.path)

    @cached_property
    def store(self) -> LanceStore:
        return LanceStore(self.path, self.settings.index)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.embedder, self.settings.retrieval)

    @cached_property
    def generator(self) -> Generator:
        return ExtractiveGenerator(self.embedder, self.settings.answer)

    def _require_index(self) -> None:
        if not self.store.exists:
            raise StoreError(f"no knowledge base at {self.path}; run `groundwork ingest PATH` first")
        self.store.check_model(self.embedder.model_id, self.embedder.dimension)

    # -- ingest -------------------------------------------------------------------------------------
    def ingest(self, paths: Sequence[str | Path], sync: bool = True, progress: ProgressFn | None = None,
               text_field: str | None = None, id_field: str | None = None,
               metadata_fields: Sequence[str] | None = None) -> IngestReport:  # fmt: skip
        """Sync files and folders into the index. See groundwork.ingest.sync for the guarantees."""
        s = self.settings.ingest
        records = RecordOptions(
            text_field or s.text_field, id_field or s.id_field, tuple(metadata_fields or s.metadata_fields)
        )
        chunker = make_chunker(self.settings.chunking, self.embedder)
        ingestor = Ingestor(self.store, self.embedder, chunker, s, records, exclude=self.path)
        return ingestor.run([Path(p) for p in paths], sync=sync, progress=progress)

    # -- query --------------------------------------------------------------------------------------
    def search(self, query: str, mode: str | None = None, top_k: int | None = None,
               filter: str | Filter | None = None) -> list[SearchHit]:  # noqa: A002 # fmt: skip
        """Ranked chunks for ``query``. Raises FilterError for a bad filter, StoreError with no index."""
        self._require_index()
        return self.retriever.retrieve(query, mode, top_k, filter).hits

    def ask(self, question: str, mode: str | None = None, top_k: int | None = None,
            filter: str | Filter | None = None) -> Answer:  # noqa: A002 # fmt: skip
        """Retrieve, assemble context within the token budget, and answer with citations (or abstain)."""
        t0 = time.perf_counter()
        self._require_index()
        a = self.settings.answer
        retrieval = self.retriever.retrieve(question, mode, top_k or a.top_k, filter)
        t1 = time.perf_counter()
        context = assemble_context(retrieval.hits, self.embedder.count_tokens, a.context_tokens, a.dedup_similarity)
        gen = self.generator.generate(question, context)
        t2 = time.perf_counter()
        by_n = {c.n: c for c in context}
        text, mapping = renumber(gen.text, set(by_n))
        citations = [
            Citation(n=new, doc_id=by_n[old].hit.chunk.doc_id, chunk_id=by_n[old].hit.chunk.chunk_id,
                     source=by_n[old].hit.chunk.source, score=by_n[old].hit.score, text=by_n[old].text)
            for old, new in mapping.items()
        ]  # fmt: skip
        timings = {
            "embed": retrieval.timings_ms.get("embed", 0.0),
            "retrieve": retrieval.timings_ms.get("retrieve", 0.0),
            "generate": (t2 - t1) * 1000,
            "total": (t2 - t0) * 1000,
        }
        return Answer(question, text, gen.abstained, citations, {k: round(v, 2) for k, v in timings.items()},
                      retrieval.hits, gen.evidence_score)  # fmt: skip

    # -- inspection ---------------------------------------------------------------------------------
    def documents(self) -> list[DocumentInfo]:
        return self.store.list_documents()

    def versions(self) -> list[IndexVersion]:
        return self.store.list_versions()

    def count_chunks(self) -> int:
        return self.store.count_chunks()


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
