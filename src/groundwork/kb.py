"""KnowledgeBase: the Python API. The CLI (and later the HTTP server) are thin layers over it.

>>> kb = KnowledgeBase("./.groundwork")
>>> kb.ingest(["docs/"])                       # IngestReport
>>> kb.search("how do I filter?", top_k=5)     # list[SearchHit]
>>> kb.ask("how do I filter?")                 # Answer, with [n] citations
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from groundwork.answer import ExtractiveGenerator, Generator, assemble_context
from groundwork.answer.backends import make_chat_model
from groundwork.answer.chat import ChatModel, Message
from groundwork.answer.citations import CitationStreamFilter, renumber
from groundwork.answer.generator import TokenCallback
from groundwork.answer.llm import FallbackGenerator, LLMGenerator
from groundwork.audit import AuditLog, PgAuditLog, answer_record
from groundwork.config import Settings, load_settings
from groundwork.errors import ConfigError, StoreError
from groundwork.filters import Filter
from groundwork.guard import REFUSAL, Guardrails
from groundwork.guard.guardrails import mask_pii_for_ingest
from groundwork.index.embedder import SentenceTransformerEmbedder, load_embedder
from groundwork.index.store import Store, open_store
from groundwork.ingest.chunking import make_chunker
from groundwork.ingest.records import RecordOptions
from groundwork.ingest.sync import DocumentAcl, Ingestor, ProgressFn, SourceItem
from groundwork.retrieve import Retriever, SearchPipeline
from groundwork.retrieve.conversation import rewrite_question
from groundwork.retrieve.decompose import Decomposer, HeuristicDecomposer, LLMDecomposer
from groundwork.retrieve.rerank import CrossEncoderReranker, LLMReranker, MMRReranker, Reranker
from groundwork.types import Access, Answer, Chunk, Citation, DocumentInfo, IndexVersion, IngestReport, SearchHit


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
    def store(self) -> Store:
        """The configured store: LanceDB in the kb folder, or PostgreSQL (``store = "postgres"``)."""
        return open_store(self.settings, self.path, lambda: self.embedder.dimension)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.embedder, self.settings.retrieval)

    @cached_property
    def chat_model(self) -> ChatModel | None:
        """The configured LLM (generator.backend other than extractive), shared by the generator,
        the LLM reranker, LLM decomposition and follow-up rewriting; None for the extractive default."""
        g = self.settings.generator
        return None if g.backend == "extractive" else make_chat_model(g)

    @cached_property
    def generator(self) -> Generator:
        extractive = ExtractiveGenerator(self.embedder, self.settings.answer)
        if self.chat_model is None:
            return extractive
        g = self.settings.generator
        llm = LLMGenerator(self.chat_model, g.prompt, g.max_tokens)
        return FallbackGenerator(llm, extractive) if g.fallback == "extractive" else llm

    @cached_property
    def pipeline(self) -> SearchPipeline:
        r = self.settings.rerank
        reranker: Reranker | None = None
        if r.method == "mmr":
            reranker = MMRReranker(self.embedder, r.mmr_lambda)
        elif r.method == "cross-encoder":
            if r.model_path is None:
                raise ConfigError("rerank.model_path is required for rerank.method = 'cross-encoder'")
            reranker = CrossEncoderReranker(r.model_path, r.batch_size, self.settings.embedder.device)
        elif r.method == "llm":
            if self.chat_model is None:
                raise ConfigError(
                    "rerank.method = 'llm' needs an LLM: set generator.backend (openai, bedrock, transformers)"
                )
            reranker = LLMReranker(self.chat_model)
        decomposer: Decomposer | None = None
        d = self.settings.retrieval.decompose
        if d == "heuristic" or (d == "llm" and self.chat_model is None):
            decomposer = HeuristicDecomposer()
        elif d == "llm":
            decomposer = LLMDecomposer(self.chat_model)
        return SearchPipeline(self.retriever, reranker, decomposer, r.depth)

    @cached_property
    def guardrails(self) -> Guardrails:
        return Guardrails(self.settings.guard, self.embedder)

    @cached_property
    def audit(self) -> AuditLog | PgAuditLog:
        """``audit.sqlite`` in the kb folder; the ``audit`` table when the store is PostgreSQL."""
        if self.settings.store == "postgres":
            return PgAuditLog(self.store.pool)
        return AuditLog(self.path / "audit.sqlite")

    def _require_index(self) -> None:
        if not self.store.exists:
            raise StoreError(f"no knowledge base at {self.path}; run `groundwork ingest PATH` first")
        self.store.check_model(self.embedder.model_id, self.embedder.dimension)

    # -- ingest -------------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path],
        sync: bool = True,
        progress: ProgressFn | None = None,
        text_field: str | None = None,
        id_field: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        tenant: str | None = None,
        allowed_groups: Sequence[str] = (),
        items: Sequence[SourceItem] = (),
        engine: str = "local",
        ray_address: str | None = None,
        ray_cpus: int | None = None,
    ) -> IngestReport:
        """Sync files, folders and ``s3://bucket/prefix`` sources (and in-memory ``items``) into the
        index. See groundwork.ingest.sync for the guarantees.

        ``engine="ray"`` runs parsing, chunking and embedding as Ray Data stages (``ray_address``: None
        starts a local Ray with ``ray_cpus`` CPUs, "auto" joins a cluster); results equal the local engine's.
        ``tenant`` and ``allowed_groups`` set the access control of every document of this run (unless
        ``ingest.acl_tenant_field`` / ``ingest.acl_groups_field`` map them from record metadata)."""
        s = self.settings.ingest
        records = RecordOptions(
            text_field or s.text_field, id_field or s.id_field, tuple(metadata_fields or s.metadata_fields)
        )
        chunker = make_chunker(self.settings.chunking, self.embedder)
        g = self.settings.guard
        mask = partial(mask_pii_for_ingest, region=g.pii_region) if g.pii_at_ingest else None
        args = (self.store, self.embedder, chunker, s, records)
        kwargs = {
            "exclude": self.path,
            "text_transform": mask,
            "transform_id": f"pii-mask:{g.pii_region}",
            "acl": DocumentAcl(tenant, tuple(allowed_groups), s.acl_tenant_field, s.acl_groups_field),
        }
        if engine == "ray":
            from groundwork.ingest.ray_engine import RayIngestor

            ingestor: Ingestor = RayIngestor(
                *args, settings_all=self.settings, address=ray_address, num_cpus=ray_cpus, **kwargs
            )
        elif engine == "local":
            ingestor = Ingestor(*args, **kwargs)
        else:
            raise ConfigError(f"unknown ingest engine {engine!r}: use local or ray")
        return ingestor.run(
            [p if str(p).startswith("s3://") else Path(p) for p in paths], sync=sync, progress=progress, items=items
        )

    # -- query --------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        mode: str | None = None,
        top_k: int | None = None,
        filter: str | Filter | None = None,
        access: Access | None = None,
    ) -> list[SearchHit]:
        """Ranked chunks for ``query`` (decomposition and reranking as configured).

        Raises FilterError for a bad filter, ValueError for a bad mode, StoreError with no index."""
        self._require_index()
        return self.pipeline.search(query, mode, top_k, filter, access).hits

    def ask(
        self,
        question: str,
        mode: str | None = None,
        top_k: int | None = None,
        filter: str | Filter | None = None,
        history: Sequence[Message] | None = None,
        on_token: TokenCallback | None = None,
        caller: str = "cli",
        access: Access | None = None,
    ) -> Answer:
        """Answer ``question`` from the index with ``[n]`` citations, or abstain.

        Steps: input guardrails -> follow-up rewriting (when ``history`` has earlier turns) -> search ->
        context assembly within the token budget (the generator's tokenizer) -> context guardrails ->
        generation (``on_token`` receives streamed text) -> citation check -> output guardrails ->
        audit record. A blocked question is refused without retrieval; the refusal is audited too.
        ``access`` limits every retrieval to the documents the caller may see (None: all); the audit
        record carries the caller's tenant. Raises FilterError, ValueError, StoreError as ``search``
        does; GeneratorError only when the backend fails and ``generator.fallback`` is 'none'.
        """
        t0 = time.perf_counter()
        self._require_index()
        a, g = self.settings.answer, self.settings.generator
        mode = mode or self.settings.retrieval.mode
        answer = Answer(
            question,
            "",
            False,
            [],
            {},
            answer_id=uuid.uuid4().hex,
            model_id=self.generator.model_id,
            prompt=_prompt_ref(self.generator),
            index_version=self.store.current_version(),
        )
        timings: dict[str, float] = {}
        answer.guardrails += self.guardrails.check_question(question)
        if any(d.action == "blocked" for d in answer.guardrails):
            answer.answer, answer.abstained, answer.blocked = REFUSAL, True, True
            if on_token:
                on_token(REFUSAL)
            return self._finish(answer, timings, t0, caller, access, mode, filter)
        t = time.perf_counter()
        answer.search_query = rewrite_question(question, history or [], self.chat_model) if history else question
        timings["rewrite"] = (time.perf_counter() - t) * 1000
        result = self.pipeline.search(answer.search_query, mode, top_k or a.top_k, filter, access)
        answer.hits, answer.sub_questions = result.hits, result.sub_questions
        timings.update(result.timings_ms)
        t = time.perf_counter()
        budget = min(
            a.context_tokens, getattr(self.generator, "context_budget", lambda q: a.context_tokens)(answer.search_query)
        )
        context = assemble_context(result.hits, self.generator.count_tokens, budget, a.dedup_similarity)
        context, decisions, flagged = self.guardrails.check_context(context)
        answer.guardrails += decisions
        timings["assemble"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        stream = None
        if on_token is not None:  # the reader sees the final numbering: [1], [2], ... in order of use
            stream = CitationStreamFilter({c.n for c in context}, renumber=True)
            shown = on_token

            def on_token(piece: str) -> None:
                if text := stream.feed(piece):
                    shown(text)

        gen = self.generator.generate(answer.search_query, context, on_token)
        if stream is not None and (rest := stream.flush()):
            shown(rest)
        timings["generate"] = (time.perf_counter() - t) * 1000
        answer.model_id = gen.model_id or answer.model_id
        answer.prompt = gen.prompt if gen.prompt is not None else answer.prompt
        answer.abstained, answer.evidence_score, answer.notice = gen.abstained, gen.evidence_score, gen.notice
        answer.flags, answer.invalid_citations = list(gen.flags), gen.invalid_citations
        by_n = {c.n: c for c in context}
        text, mapping = renumber(gen.text, set(by_n))
        for old, new in mapping.items():
            ch = by_n[old].hit.chunk
            answer.citations.append(
                Citation(
                    n=new,
                    doc_id=ch.doc_id,
                    chunk_id=ch.chunk_id,
                    source=ch.source,
                    score=by_n[old].hit.score,
                    text=by_n[old].text,
                    heading=ch.heading,
                    page=ch.page,
                    flags=["prompt_injection"] if ch.chunk_id in flagged else [],
                )
            )
        t = time.perf_counter()
        text, decisions = self.guardrails.check_answer(answer.search_query, text, context, gen.abstained)
        answer.guardrails += decisions
        timings["guard"] = (time.perf_counter() - t) * 1000
        if any(d.action == "blocked" and d.stage == "output" for d in decisions):
            text, answer.abstained, answer.blocked, answer.citations = REFUSAL, True, True, []
        answer.answer = text
        return self._finish(answer, timings, t0, caller, access, mode, filter)

    def _finish(
        self,
        answer: Answer,
        timings: dict[str, float],
        t0: float,
        caller: str,
        access: Access | None,
        mode: str,
        filter: str | Filter | None,
    ) -> Answer:
        timings["total"] = (time.perf_counter() - t0) * 1000
        answer.timings_ms = {k: round(v, 2) for k, v in timings.items()}
        if self.settings.audit.enabled:
            self.audit.write(
                answer_record(
                    answer, caller, access, mode, filter if isinstance(filter, str) or filter is None else str(filter)
                )
            )
        return answer

    # -- model changes ------------------------------------------------------------------------------
    def reindex(self, embedder_model: str) -> tuple[int, IndexVersion]:
        """Re-embed every chunk with another sentence-transformers model (a new index version; the
        old one stays restorable with ``rollback``). Afterwards set ``embedder.model`` to the new
        model: the model check refuses queries with the old one. Returns (chunks, version)."""
        self._require_index()
        settings = self.settings.embedder.model_copy(update={"model": embedder_model})
        new = load_embedder(settings, settings.cache_dir or self.path)
        n = self.store.reembed(new.model_id, new.dimension, new.embed)
        docs = [d.doc_id for d in self.store.list_documents()]
        version = self.store.record_version(0, len(docs), 0, docs)
        self.__dict__.pop("embedder", None)
        self.__dict__.pop("retriever", None)
        self.__dict__.pop("pipeline", None)
        return n, version

    def rollback(self) -> dict[str, Any]:
        """Undo the last ``reindex``: the previous model's vectors and model id come back."""
        prev = self.store.rollback()
        docs = [d.doc_id for d in self.store.list_documents()]
        self.store.record_version(0, len(docs), 0, docs)
        return prev

    # -- inspection ---------------------------------------------------------------------------------
    def documents(self, access: Access | None = None) -> list[DocumentInfo]:
        return self.store.list_documents(access)

    def document_chunks(self, doc_id: str, access: Access | None = None) -> list[Chunk]:
        return self.store.document_chunks(doc_id, access)

    def delete(self, doc_ids: Sequence[str], access: Access | None = None) -> int:
        """Delete documents the caller may see; returns how many were deleted. Records an index version."""
        visible = {d.doc_id for d in self.store.list_documents(access)}
        ids = [d for d in doc_ids if d in visible]
        if not ids:
            return 0
        self.store.delete_documents(ids)
        self.store.record_version(0, 0, len(ids), ids)
        return len(ids)

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


def _prompt_ref(generator: Generator) -> str | None:
    prompt = getattr(generator, "prompt", None)
    return prompt.ref if prompt is not None else None
