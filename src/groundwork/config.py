"""The one settings object.

Precedence, lowest first: defaults < ``groundwork.toml`` < environment ``GROUNDWORK_*`` < CLI flags
(passed as keyword overrides). Nested keys use ``__`` in the environment, e.g.
``GROUNDWORK_RETRIEVAL__TOP_K=20``. Invalid settings raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from groundwork.errors import ConfigError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbedderSettings(_Section):
    model: str = Field(BUNDLED_MODEL, description="'bundled:all-MiniLM-L6-v2' or a sentence-transformers model folder")
    batch_size: int | None = Field(
        None, ge=1, le=4096, description="texts per model call; default by device: 32 on CPU, 256 on CUDA"
    )
    device: str = Field(
        "auto", description="'auto' (CUDA when torch sees a GPU, else CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'"
    )
    precision: Literal["auto", "fp32", "fp16"] = Field(
        "auto", description="'auto': fp16 on CUDA, fp32 elsewhere (fp16 on CPU is slower, not faster)"
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="CPU threads of one model call (torch's intra-op threads, process-wide; ONNX Runtime's "
        "intra_op_num_threads); default: the library's (one per core). 1 keeps a busy server's encodes from "
        "contending with each other and with the store's threads",
    )
    cache: bool = Field(True, description="reuse embeddings keyed by (model id, text sha256)")
    cache_dir: Path | None = Field(
        None, description="folder of the embedding cache; default: the knowledge-base folder"
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "torch",
        description="'torch'; 'onnx' (ONNX Runtime on the CPU, same vectors and model id); 'onnx-int8' "
        "(dynamic int8 quantisation: faster, other vectors, so another model id: an index built with another "
        "backend refuses it until re-ingested)",
    )
    onnx_quantization: Literal["auto", "avx2", "avx512_vnni", "arm64"] = Field(
        "auto",
        description="onnx-int8: the int8 configuration; 'auto' picks it from the CPU's flags (part of the model id)",
    )
    onnx_dir: Path | None = Field(
        None, description="folder of the ONNX files exported from embedder.model; default ~/.cache/groundwork/models"
    )


class ChunkingSettings(_Section):
    strategy: Literal["fixed", "structure", "hierarchical", "semantic"] = "structure"
    chunk_tokens: int = Field(200, ge=16, description="max tokens per embedded chunk (embedder's tokenizer)")
    overlap_tokens: int = Field(32, ge=0, description="fixed windows: tokens shared by neighbours")
    parent_tokens: int = Field(800, ge=32, description="hierarchical: max tokens of a parent (context) chunk")
    child_tokens: int = Field(128, ge=16, description="hierarchical: max tokens of a child (matched) chunk")
    semantic_percentile: float = Field(
        20.0, gt=0, lt=100, description="semantic: split where adjacent-sentence similarity is below this percentile"
    )
    min_chunk_tokens: int = Field(24, ge=0, description="structure: merge pieces shorter than this with a neighbour")

    @model_validator(mode="after")
    def _check(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        if self.child_tokens > self.parent_tokens:
            raise ValueError("child_tokens must not exceed parent_tokens")
        return self


class IngestSettings(_Section):
    max_file_mb: float = Field(50.0, gt=0, description="files larger than this are failed, not read (MB)")
    max_text_chars: int = Field(
        5_000_000,
        ge=1,
        description="text extracted from one file (one record of a JSON/JSONL file) beyond this many characters "
        "fails the file; counted while extracting",
    )
    max_unzipped_mb: float = Field(
        100.0,
        gt=0,
        description="zip-based files (DOCX) whose members inflate to more than this in total are failed (MB, "
        "real sizes, counted while inflating)",
    )
    max_zip_ratio: float = Field(
        100.0,
        gt=0,
        description="zip-based files with a member (of 1 MiB or more) compressed more than this many times "
        "(uncompressed / compressed bytes) are failed",
    )
    max_zip_members: int = Field(10_000, ge=1, description="zip-based files with more members than this are failed")
    max_xml_nodes: int = Field(
        3_000_000,
        ge=1,
        description="zip-based files whose XML members hold more elements, attributes and text nodes than this "
        "are failed (a parser's memory grows with nodes, not bytes)",
    )
    max_table_rows: int = Field(
        100_000,
        ge=1,
        description="XLSX and CSV files with more data rows than this (all sheets together) are failed; "
        "counted while reading",
    )
    max_table_columns: int = Field(
        1_024, ge=1, description="XLSX and CSV rows wider than this many columns fail the file (a crafted sheet)"
    )
    table_row_units: int = Field(
        500,
        ge=0,
        description="a sheet (XLSX) or CSV file with at most this many data rows is indexed one row per chunk "
        "(its header repeated as 'column: value'), so a row is cited as 'sheet S, row R'; larger ones in "
        "groups of table_rows_per_group rows",
    )
    table_rows_per_group: int = Field(
        20, ge=1, description="rows per chunk of a large sheet (the header row is repeated in every group)"
    )
    max_attachments: int = Field(
        20,
        ge=0,
        description="e-mail (.eml) attachments ingested per message, each as a document of its own; "
        "further ones are reported and skipped",
    )
    ocr: bool = Field(True, description="read images (PNG, JPEG, TIFF) and PDF pages without a text layer through OCR")
    ocr_max_pages: int = Field(
        50,
        ge=0,
        description="PDF pages without a text layer that are OCR'd per document; further ones are skipped "
        "with a warning",
    )
    ocr_max_pixels: int = Field(
        40_000_000,
        ge=1,
        description="images (and rendered PDF pages) with more pixels than this are refused before they are "
        "decoded (a decompression bomb)",
    )
    ocr_dpi: int = Field(200, ge=72, le=600, description="resolution PDF pages are rendered at for OCR (dots per inch)")
    ocr_timeout_s: float = Field(
        120.0, gt=0, description="OCR of one page taking longer than this fails its file (seconds; no retry)"
    )
    batch_chunks: int = Field(256, ge=1, description="chunks embedded and committed per atomic write")
    overlap_encode: bool = Field(
        True,
        description="embed and write each batch on a background thread while the next files are parsed and "
        "chunked (off for the semantic chunker, which runs the model while chunking)",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint for s3:// sources (MinIO, Ceph); default: AWS_ENDPOINT_URL or AWS"
    )
    text_field: str | None = None
    id_field: str | None = None
    metadata_fields: list[str] = Field(default_factory=list)
    watch_quiet_ms: int = Field(
        300,
        ge=10,
        le=60_000,
        description="`ingest --watch`: changes are re-synced once the watched folders were quiet this long (ms)",
    )
    title_field: str | None = Field(
        None,
        description="JSON/JSONL: field holding the document's title (default: 'title'); it heads each chunk's indexed text",
    )
    metadata_context: bool = Field(
        True,
        description="JSON/JSONL: each declared metadata field is written as a 'field: value' line after the title "
        "in every chunk's indexed text (BM25 and embedding; dates as 'November 27, 2023'); access-control fields never",
    )
    acl_tenant_field: str | None = Field(None, description="metadata field whose value becomes the document's tenant")
    acl_groups_field: str | None = Field(
        None,
        description="metadata field (list, or comma-separated string) whose values become the document's allowed groups",
    )


class WebSettings(_Section):
    """Web sources (``groundwork ingest https://...``): every limit a fetch and a crawl obey."""

    user_agent: str = Field(
        "GroundworkBot/1.0", description="User-Agent sent with every request, and the agent robots.txt rules apply to"
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="seconds to open a connection")
    read_timeout_s: float = Field(20.0, gt=0, description="seconds to wait for each piece of a response")
    retries: int = Field(
        2, ge=0, le=10, description="retries of a request after a 429, a 5xx or a connection error (then it fails)"
    )
    backoff_s: float = Field(
        0.5, ge=0, description="first retry waits this long, each next one twice as long (Retry-After is honoured)"
    )
    max_retry_after_s: float = Field(30.0, ge=0, description="a Retry-After longer than this is cut to it (seconds)")
    max_page_mb: float = Field(
        10.0, gt=0, description="a response larger than this fails that page (MB, counted while streaming)"
    )
    max_pages: int = Field(1000, ge=1, description="pages one web source may yield (sitemap, crawl or URL list)")
    max_depth: int = Field(3, ge=0, description="crawl: links followed from the start page (0: the start page only)")
    max_redirects: int = Field(5, ge=0, le=20, description="redirects followed per request")
    max_sitemaps: int = Field(50, ge=1, description="sitemap files read per source (a sitemap index names others)")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="hosts a crawl, sitemap or redirect may reach besides the source's own host",
    )
    content_types: list[str] = Field(
        default_factory=lambda: [
            "text/html",
            "application/xhtml+xml",
            "text/plain",
            "text/markdown",
            "application/pdf",
        ],
        description="media types ingested; a page of another type fails with its type named",
    )
    allow_private: bool = Field(
        False,
        description="allow URLs whose host resolves to a private, loopback, link-local or reserved address "
        "(off: a web source cannot reach the server's own network)",
    )
    delay_s: float = Field(
        0.0, ge=0, description="pause between two requests to a site (seconds), at least robots.txt's Crawl-delay"
    )
    max_crawl_delay_s: float = Field(
        10.0, ge=0, description="a robots.txt Crawl-delay longer than this is cut to it (seconds)"
    )


class IndexSettings(_Section):
    writer_timeout_s: float | None = Field(
        None,
        ge=0,
        description="how long a write (ingest, delete, reindex, rollback, check --repair) waits for another "
        "writer of the same knowledge base before failing; unset = as long as the other writer runs, 0 = not at all",
    )
    ann_min_rows: int = Field(
        100_000, ge=1, description="build an HNSW index once the table has this many chunks; flat search below"
    )
    flat_in_memory: bool = Field(
        True,
        description="LanceDB, below ann_min_rows: exact vector search from an in-process copy of the vectors "
        "(rows x dimension x 4 bytes of memory, reloaded after each write) instead of reading them on every query",
    )
    memory_rows_max_mb: int = Field(
        512,
        ge=0,
        description="LanceDB: hold a copy of the chunk table (vectors and columns) in memory while it takes at "
        "most this many MB there, so the rows a search keeps are read from memory (reloaded after writes; up to "
        "three times the memory while a version loads); 0 = rows always from the files",
    )
    hnsw_m: int = Field(20, ge=4)
    hnsw_ef_construction: int = Field(300, ge=16)
    hnsw_ef_search: int = Field(128, ge=10, description="HNSW query-time candidate list size (recall vs latency)")
    refine_factor: int = Field(
        0, ge=0, description="re-rank refine_factor * top_k ANN candidates with exact vectors; 0 = off"
    )
    version_retention_hours: float = Field(
        168.0,
        ge=0,
        description="storage versions older than this are removed; `groundwork rollback` after `reindex` needs the "
        "version from before the reindex, so this is also the rollback window",
    )
    cleanup_interval_minutes: float = Field(
        60.0,
        ge=0,
        description="remove storage versions past retention at most this often (each cleanup reads them all)",
    )
    compaction_fragments: int = Field(
        8,
        ge=2,
        description="size-tiered compaction: merge this many runs of one size tier into one (each write adds a run); "
        "also the number of new fragments that triggers indexing them",
    )
    compaction_max_rows: int = Field(
        131_072,
        ge=1,
        description="compaction never rewrites a run of this many rows, except to drop deleted rows; caps one rewrite",
    )
    unindexed_max_rows: int = Field(
        1024,
        ge=0,
        description="rows written since the last index update that searches may scan unindexed before they are indexed",
    )
    fts_language: str = "English"
    read_consistency_s: float = Field(
        0.0,
        ge=0,
        description="LanceDB: how stale a read may be (seconds); 0 = every read sees the newest committed version, whoever wrote it",
    )
    query_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="time budget of one store read (search, listing); past it the read is cancelled and the request fails",
    )
    lance_uri: str | None = Field(
        None,
        description="keep the LanceDB tables in an object store (s3://bucket/path) instead of the kb folder; `--kb s3://...` sets it",
    )
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="LanceDB object-store options for lance_uri, e.g. aws_endpoint, aws_region, allow_http",
    )
    fts_stem: bool = True
    fts_remove_stop_words: bool = True


class PostgresSettings(_Section):
    schema_name: str = Field(
        "groundwork", description="PostgreSQL schema holding the tables (several knowledge bases can share a database)"
    )
    fts_language: str = Field(
        "english", description="text-search configuration of the keyword side (fixed when the schema is created)"
    )
    pool_size: int = Field(8, ge=1, le=256, description="connections per process")
    auto_migrate: bool = Field(
        True, description="apply missing migrations when a process opens the store (else run `groundwork db migrate`)"
    )


class RetrievalSettings(_Section):
    mode: Literal["bm25", "dense", "hybrid"] = "hybrid"
    top_k: int = Field(10, ge=1, le=1000)
    candidates: int = Field(100, ge=1, le=10000, description="hybrid: depth of each candidate list before fusion")
    rrf_k: int = Field(60, ge=1, description="RRF constant (Cormack, Clarke & Buettcher 2009)")
    # Defaults measured on SciFact train and MultiHop-RAG dev (docs/benchmarks.md, bench/fusion.py): of
    # every fusion tried, adaptive 0.5/0.5 moving to 0.8 BM25 for long questions is the one within
    # 0.005 of the best on both (SciFact nDCG@10, MultiHop-RAG Hits@10 and MRR@10); convex 0.7/0.3, the
    # earlier default, was a compromise 0.010 below the best on SciFact.
    fusion: Literal["rrf", "convex", "zscore", "dbsf", "combmnz", "adaptive"] = Field(
        "adaptive",
        description="hybrid: how the BM25 and dense lists are fused: convex (weighted min-max normalised scores), "
        "rrf (reciprocal rank fusion), zscore, dbsf (distribution-based), combmnz, adaptive (per-query weights "
        "from each list's score gap); sources in retrieve/fusion.py",
    )
    bm25_weight: float = Field(0.5, ge=0, description="hybrid: weight of the BM25 list in fusion")
    dense_weight: float = Field(0.5, ge=0, description="hybrid: weight of the dense list in fusion")
    long_query_bm25_weight: float | None = Field(
        0.8,
        ge=0,
        le=1,
        description="hybrid: BM25's share of the fusion weight for questions of long_query_words words or more "
        "(moved linearly from bm25_weight's share at short_query_words); unset: the same weights for every question",
    )
    short_query_words: int = Field(
        15, ge=0, description="hybrid: questions this short or shorter use bm25_weight/dense_weight as they are"
    )
    long_query_words: int = Field(
        40, ge=1, description="hybrid: questions this long or longer use long_query_bm25_weight"
    )
    decompose: Literal["off", "heuristic", "llm"] = Field(
        "off", description="multi-hop: split a question into sub-questions, retrieve for each, merge (decompose_merge)"
    )
    decompose_original_weight: float = Field(
        1.0, ge=0, description="multi-hop: RRF weight of the original question's list (each sub-question weighs 1)"
    )
    # interleave: best of the merges on MultiHop-RAG dev (Hits@10 0.916 against 0.896 single-shot and
    # 0.861 for rrf; bench/multihop_merge.py, docs/benchmarks.md); decomposition itself stays off by default.
    decompose_merge: Literal["rrf", "interleave", "coverage"] = Field(
        "interleave",
        description="multi-hop: how the question's and the sub-questions' lists share the top_k: RRF of all lists, "
        "round-robin interleaving (question first), or the question's ranking with each sub-question's best "
        "decompose_slots chunks in the last places of the top_k (coverage)",
    )
    decompose_slots: int = Field(
        1, ge=1, le=10, description="multi-hop, decompose_merge = 'coverage': top_k places kept per sub-question"
    )
    group_by: Literal["chunk", "document"] = Field(
        "chunk",
        description="what `groundwork search` and POST /v1/search rank by default: chunks, or distinct documents "
        "each with its best passages (answers always work on chunks)",
    )
    group_score: Literal["max", "sum2"] = Field(
        "max",
        description="grouped by document: a document's score is its best chunk's score (max), "
        "or the sum of its best two chunks' scores (sum2)",
    )
    group_passages: int = Field(
        3, ge=1, le=10, description="grouped by document: best chunks shown per document (passages)"
    )
    group_max_chunks: int = Field(
        1000,
        ge=1,
        le=10000,
        description="grouped by document: most chunks ranked to find top_k distinct documents (the search deepens "
        "by doubling up to this)",
    )


class RerankSettings(_Section):
    method: Literal["none", "mmr", "cross-encoder", "llm"] = Field(
        "none", description="second-stage reranker applied to the retrieved candidates"
    )
    depth: int = Field(
        30, ge=1, le=1000, description="candidates retrieved and handed to the reranker (then cut to top_k)"
    )
    model_path: Path | None = Field(
        None, description="cross-encoder: a sentence-transformers CrossEncoder model folder"
    )
    mmr_lambda: float = Field(0.7, ge=0, le=1, description="mmr: 1 = relevance only, 0 = diversity only")
    batch_size: int = Field(32, ge=1)


class GeneratorSettings(_Section):
    backend: Literal["extractive", "openai", "bedrock", "transformers"] = "extractive"
    model: str = Field("", description="openai/bedrock: model name or id (e.g. 'gpt-4o-mini', 'amazon.nova-lite-v1:0')")
    base_url: str | None = Field(
        None, description="openai: base URL of any OpenAI-compatible server, e.g. http://localhost:8000/v1"
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="openai: name of the environment variable holding the key (the key itself is never a setting)",
    )
    region: str | None = Field(None, description="bedrock: AWS region; default from the standard AWS chain")
    model_path: Path | None = Field(None, description="transformers: a causal LM folder (AutoModelForCausalLM)")
    adapter_path: Path | None = Field(None, description="transformers: optional PEFT LoRA adapter folder")
    device: str = Field("cpu", description="transformers: cpu, cuda, cuda:0, ...")
    timeout_s: float = Field(60.0, gt=0, description="per-request timeout (seconds)")
    max_retries: int = Field(2, ge=0, le=10, description="retries with exponential backoff on timeouts, 429 and 5xx")
    max_tokens: int = Field(512, ge=1, description="maximum tokens generated per answer")
    temperature: float = Field(0.0, ge=0, le=2)
    context_window: int = Field(
        8192,
        ge=256,
        description="model context size in tokens; the context budget never exceeds it minus max_tokens and the prompt",
    )
    prompt: str = Field("grounded-answer", description="prompt template id (a file under groundwork/llm/templates)")
    fallback: Literal["extractive", "none"] = Field(
        "extractive", description="answer with this generator when the backend fails; 'none' raises"
    )


class GuardSettings(_Section):
    injection: Literal["block", "flag", "off"] = Field(
        "flag", description="prompt injection in the question: refuse it (block), record it (flag) or off"
    )
    injection_context: Literal["exclude", "mask", "flag", "off"] = Field(
        "exclude",
        description="prompt injection in a retrieved chunk: leave the chunk out of the answer and say so (exclude), "
        "remove the instruction-like span (mask), keep it quoted as data and record it (flag), or off",
    )
    injection_semantic: bool = Field(
        True,
        description="retrieved chunks: besides the patterns, flag sentences close in meaning to instructions "
        "aimed at the model (bundled embedder; catches paraphrases)",
    )
    injection_threshold: float = Field(
        0.50,
        ge=0,
        le=1,
        description="semantic signal: minimum cosine similarity of a sentence to the nearest instruction exemplar "
        "(chosen on the dev half of eval/injection_cases.jsonl, docs/benchmarks.md)",
    )
    injection_margin: float = Field(
        0.24,
        ge=-1,
        le=1,
        description="semantic signal: how much closer to an instruction exemplar than to a benign one a sentence "
        "must be (chosen likewise)",
    )
    denied_topics: list[str] = Field(
        default_factory=list, description="topics described in natural language; questions too similar are refused"
    )
    topic_action: Literal["block", "flag", "off"] = "block"
    topic_threshold: float = Field(
        0.55, ge=0, le=1, description="cosine similarity (bundled embedder) at which a question matches a denied topic"
    )
    deny_words: list[str] = Field(
        default_factory=list,
        description="words/phrases refused in questions and answers (case-insensitive, whole words)",
    )
    deny_words_action: Literal["block", "mask", "flag", "off"] = "block"
    pii: Literal["block", "mask", "flag", "off"] = Field(
        "mask", description="PII in answers: emails, phones, payment cards (Luhn), IBANs, US SSNs, IP addresses"
    )
    pii_strict: bool = Field(
        False,
        description="mask PII in answers even where it is quoted from the caller's own sources (by default those are shown as written)",
    )
    pii_at_ingest: bool = Field(False, description="also mask PII in chunk text before it is indexed")
    pii_region: str = Field("US", description="default region for phone numbers without a country code")
    grounding: Literal["block", "flag", "off"] = Field(
        "flag", description="contextual grounding check of generated answers"
    )
    grounding_threshold: float = Field(
        0.7,
        ge=0,
        le=0.99,
        description="minimum grounding score (mean best support of answer sentences; calibrated on MultiHop-RAG dev, docs/benchmarks.md)",
    )
    relevance_threshold: float = Field(
        0.35, ge=0, le=0.99, description="minimum relevance score (answer addresses the question; calibrated likewise)"
    )
    max_question_chars: int = Field(4000, ge=1, description="longer questions are refused")

    @field_validator("injection", mode="before")
    @classmethod
    def _injection_was_split(cls, value: Any) -> Any:
        # "mask" applied only to chunks; a config written before the split gets the new key named.
        if value == "mask":
            raise ValueError(
                "'mask' is now guard.injection_context = \"mask\" (retrieved chunks); "
                "guard.injection is the action on questions: block, flag or off"
            )
        return value


class ServeSettings(_Section):
    host: str = Field("127.0.0.1", description="address `groundwork serve` binds to")
    port: int = Field(8080, ge=1, le=65535)
    max_upload_mb: float = Field(50.0, gt=0, description="largest accepted upload request (MB); larger gets 413")
    max_top_k: int = Field(100, ge=1, description="largest top_k a request may ask for")
    threads: int = Field(
        32,
        ge=2,
        le=512,
        description="worker threads of one server process for searches, answers and other blocking requests",
    )
    tenant_concurrency: int = Field(
        4, ge=1, description="searches and answers of one tenant running at once per process; more get 429"
    )
    rate_per_minute: float = Field(600.0, gt=0, description="per-key token-bucket refill rate (requests per minute)")
    rate_burst: int = Field(60, ge=1, description="per-key token-bucket size (requests)")
    sync_paths: list[Path] = Field(default_factory=list, description="folders re-synced by POST /v1/sync")
    sources: list[str] = Field(
        default_factory=list,
        description="sources synced on a schedule (every sync_interval_s) and by POST /v1/sync: folders, "
        "s3://bucket/prefix, web sitemaps or start pages (https://...)",
    )
    sync_interval_s: float = Field(
        0.0,
        ge=0,
        description="seconds between scheduled syncs of sources and sync_paths, one durable job each "
        "(one at a time across replicas); 0: no schedule",
    )
    job_lease_seconds: float = Field(
        30.0,
        ge=1,
        description="store = 'postgres': a running job whose worker has not heart-beaten for this long is retried by another replica",
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint, e.g. http://localhost:4318/v1/traces; off when unset"
    )
    eval_dir: Path | None = Field(
        None, description="folder of `groundwork eval ... --json` results shown on the web page's Evaluation tab"
    )


class AuditSettings(_Section):
    enabled: bool = Field(
        True, description="write an audit record of every answer to audit.sqlite in the knowledge-base folder"
    )


class ReviewSettings(_Section):
    """The review queue (docs/operations.md, "Feedback review")."""

    not_helpful: bool = Field(True, description="'down' feedback on an answer opens a review item")
    low_grounding: bool = Field(
        True,
        description="an answer flagged or blocked by the grounding check (guard.grounding_threshold) opens a review item",
    )


class MonitorSettings(_Section):
    """Drift monitoring (docs/operations.md, "Drift monitoring")."""

    interval_s: float = Field(
        0.0, ge=0, description="run the monitor inside `groundwork serve` every this many seconds; 0 = off (use cron)"
    )
    eval_set: Path | None = Field(
        None,
        description="gold eval set (JSONL) re-run against the live index; resolved reviews are always added",
    )
    window: int = Field(
        500, ge=10, le=100_000, description="recent answers (audit records) compared with the reference"
    )
    reference: int = Field(
        500, ge=10, le=100_000, description="answers before the recent window that form the reference window"
    )
    psi_alert: float = Field(
        0.2, gt=0, description="population stability index above which a distribution counts as drifted"
    )
    eval_drop: float = Field(
        0.05, gt=0, le=1, description="a monitored eval metric this far below the baseline run counts as a regression"
    )


class CacheSettings(_Section):
    """The answer and retrieval caches in front of the pipeline (docs/operations.md). Entries are keyed
    by the caller's access view, the normalised question, the settings and the index version, so any
    index change (ingest, delete, reindex, rollback, from any process) makes them unreachable."""

    enabled: bool = Field(True, description="serve repeated questions from the cache; `cache = false` turns it off")
    max_entries: int = Field(
        10_000, ge=1, le=10_000_000, description="entries kept per cache (in-process LRU, and the answer table)"
    )
    ttl_s: float = Field(3600.0, gt=0, description="seconds an entry is served after it was stored")


class PriceSettings(_Section):
    """A model's list price in US dollars per 1,000 tokens (``[pricing."gpt-4o-mini"]``)."""

    prompt_per_1k: float = Field(0.0, ge=0, description="USD per 1,000 prompt (input) tokens")
    completion_per_1k: float = Field(0.0, ge=0, description="USD per 1,000 completion (output) tokens")


class QuotaSettings(_Section):
    daily_tokens_per_tenant: int | None = Field(
        None, ge=1, description="prompt + completion tokens one tenant may use per UTC day; unset: no quota"
    )
    tenants: dict[str, int] = Field(
        default_factory=dict, description="per-tenant daily token quotas that replace the default ('~' = no tenant)"
    )


class AnswerSettings(_Section):
    top_k: int = Field(6, ge=1, le=100, description="chunks retrieved for an answer")
    context_tokens: int = Field(1500, ge=64, description="token budget of the assembled context")
    dedup_similarity: float = Field(
        0.95, gt=0, le=1, description="chunks at least this cosine-similar to a kept one are dropped"
    )
    max_sentences: int = Field(3, ge=1, le=20)
    mmr_lambda: float = Field(0.7, ge=0, le=1, description="MMR trade-off: 1 = relevance only, 0 = diversity only")
    min_sentence_score: float = Field(
        0.25, ge=-1, le=1, description="sentences below this cosine similarity are never quoted"
    )
    relative_margin: float = Field(
        0.12, ge=0, le=2, description="only sentences within this margin of the best one are quoted"
    )
    sentence_context: bool = Field(
        True,
        description="extractive: also score each sentence behind its chunk's title and heading path, keep the better "
        "score (a sentence under a matching heading answers without repeating the question's words)",
    )
    abstain_threshold: float = Field(
        0.50,
        ge=-1,
        le=1,
        description="abstain when the best sentence's cosine similarity is below this (calibrated on MultiHop-RAG dev, see docs/benchmarks.md)",
    )


class AgentSettings(_Section):
    """Agent mode and its policy (docs/agents.md): what the model's proposals may do."""

    enabled: bool = Field(
        False,
        description="agent mode on POST /v1/chat/completions: offer the model the built-in search_knowledge_base "
        "tool, the actions of actions_file and escalate_to_human, and run the agent loop",
    )
    actions_file: Path | None = Field(None, description="actions.toml declaring the actions (none when unset)")
    min_confidence: float = Field(
        0.40,
        ge=-1,
        le=1,
        description="minimum retrieval confidence to answer: the best cosine similarity (bundled embedder) between a "
        "search and a retrieved chunk in this turn; below it the agent escalates or abstains, never guesses",
    )
    low_confidence: Literal["escalate", "abstain"] = Field(
        "escalate", description="what happens below min_confidence: escalate to the review queue, or abstain"
    )
    escalate_denied_topics: bool = Field(
        True, description="a question on one of guard.denied_topics goes to a person instead of the model"
    )
    max_tool_calls: int = Field(
        4, ge=1, le=64, description="tool calls the model may make in one step; more are refused"
    )
    max_steps: int = Field(6, ge=1, le=50, description="model calls in one turn (the loop's bound)")
    max_tokens: int = Field(4000, ge=64, description="completion tokens in one turn, all steps together")
    max_seconds: float = Field(60.0, gt=0, description="wall time of one turn (seconds); the loop stops after it")
    action_timeout_s: float = Field(10.0, gt=0, le=300, description="http actions: timeout of one attempt (seconds)")
    action_retries: int = Field(
        2, ge=0, le=5, description="http actions: retries on connection errors, timeouts and 5xx (never on 4xx)"
    )
    max_result_chars: int = Field(4000, ge=100, description="an action's output is cut to this many characters")


class Settings(BaseSettings):
    """All of Groundwork's settings. See docs/configuration.md for every key."""

    model_config = SettingsConfigDict(env_prefix="GROUNDWORK_", env_nested_delimiter="__", extra="forbid")

    kb: Path = Field(
        Path(".groundwork"), description="knowledge-base folder (state files; the index too when store = 'lance')"
    )
    store: Literal["lance", "postgres"] = Field(
        "lance", description="where chunks live: embedded LanceDB in the kb folder, or PostgreSQL + pgvector"
    )
    pg_dsn: str | None = Field(
        None, description="PostgreSQL connection string (GROUNDWORK_PG_DSN); required for store = 'postgres'"
    )
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    pricing: dict[str, PriceSettings] = Field(
        default_factory=dict, description="USD per 1,000 tokens by model name or model id; unlisted models cost 0"
    )
    quota: QuotaSettings = Field(default_factory=QuotaSettings)

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_switch(cls, value: Any) -> Any:
        # `cache = false` (or GROUNDWORK_CACHE=false) is the short form of `[cache] enabled = false`.
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "0", "1", "on", "off"):
            return {"enabled": value.strip().lower() in ("true", "1", "on")}
        return value

    @model_validator(mode="after")
    def _check_store(self) -> Settings:
        if self.store == "postgres" and not self.pg_dsn:
            raise ValueError(
                "store = 'postgres' needs pg_dsn: set GROUNDWORK_PG_DSN (e.g. postgresql://user@host:5432/db)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_TOML_FILE.get("path"))
        return (init_settings, env_settings, toml)


# The TOML path is chosen per load(); pydantic-settings reads sources through the class, so the
# chosen path is handed over here rather than through a global setting on the class.
_TOML_FILE: dict[str, Path | None] = {"path": None}


def _nest(overrides: dict[str, Any]) -> dict[str, Any]:
    """Turn ``{"retrieval.top_k": 5}`` into ``{"retrieval": {"top_k": 5}}``; None values are dropped."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the effective settings.

    ``config_file`` defaults to ``$GROUNDWORK_CONFIG`` or ``./groundwork.toml`` when it exists;
    ``overrides`` use dotted keys (``"retrieval.top_k"``) and win over everything else.
    Raises ConfigError naming the offending key, or the missing config file.
    """
    path = config_file or os.environ.get("GROUNDWORK_CONFIG")
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; create it or drop --config")
    elif Path("groundwork.toml").is_file():
        path = Path("groundwork.toml")
    _TOML_FILE["path"] = path
    try:
        return Settings(**_nest(overrides))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(root)"
            hint = _did_you_mean(err["loc"]) if err["type"] == "extra_forbidden" else ""
            problems.append(f"{key}: {err['msg']}{hint}")
        source = f" (from {path}, GROUNDWORK_* environment or flags)" if path else ""
        raise ConfigError("invalid settings" + source + ":\n  " + "\n  ".join(problems)) from None
    except Exception as exc:  # a TOML syntax error surfaces here
        raise ConfigError(f"could not read settings from {path}: {exc}") from None
    finally:
        _TOML_FILE["path"] = None


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for error messages and logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", re.sub(r"(password=)\S+", r"\1***", dsn))


def _did_you_mean(loc: tuple) -> str:
    """'; did you mean retrieval.top_k?' for an unknown key close to a known one, else ''."""
    model: Any = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        model = getattr(field, "annotation", None) if field else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return ""
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    prefix = ".".join(str(p) for p in loc[:-1])
    if close:
        return f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?"
    return f"; known keys{' of ' + prefix if prefix else ''}: {', '.join(known)}"
