"""Request and response models of the HTTP API (they are the OpenAPI spec at /openapi.json)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from groundwork.types import Answer, Citation, wire_fields

Mode = Literal["bm25", "dense", "hybrid"]


class ErrorDetail(BaseModel):
    code: str = Field(
        description="stable machine-readable code, e.g. unauthorized, forbidden, rate_limited, invalid_request, not_found"
    )
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)
    mode: Mode | None = None
    top_k: int | None = Field(None, ge=1, le=1000)
    filter: str | None = Field(None, max_length=2000, description="metadata filter expression, see docs/concepts.md")
    group_by: Literal["chunk", "document"] | None = Field(
        None,
        description="chunk: ranked chunks (Hit); document: top_k distinct documents, each with its best passages "
        "(DocumentHit) [default: the retrieval.group_by setting]",
    )


class Hit(BaseModel):
    rank: int
    score: float = Field(description="orders this result list; a fused hybrid score is relative to its query")
    relevance: float | None = Field(
        None,
        description="cosine similarity of query and chunk embeddings, comparable across queries (null in bm25 mode)",
    )
    scores: dict[str, float]
    chunk_id: str
    doc_id: str
    source: str
    title: str
    heading: str
    page: int | None
    position: int
    text: str
    metadata: dict[str, Any]


class DocumentHit(BaseModel):
    rank: int
    score: float = Field(
        description="orders this result list: the best passage's score (retrieval.group_score = max) "
        "or the sum of the best two passages' scores (sum2)"
    )
    relevance: float | None = Field(None, description="the best passage's relevance (see Hit)")
    doc_id: str
    source: str
    title: str
    metadata: dict[str, Any]
    matched: int = Field(description="chunks of this document among the ranked chunks (passages shows the best)")
    passages: list[Hit] = Field(description="the document's best chunks, best first (retrieval.group_passages)")


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=4000)
    mode: Mode | None = None
    top_k: int | None = Field(None, ge=1, le=1000)
    filter: str | None = Field(None, max_length=2000)


def wire_model(cls: type, name: str) -> type[BaseModel]:
    """A response model with exactly the wire fields of dataclass ``cls`` (``groundwork.types.to_wire``),
    so the OpenAPI schema and the JSON of ``ask --json`` come from one definition."""
    hints = get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    spec: dict[str, Any] = {}
    for field_name in wire_fields(cls):
        f = by_name[field_name]
        if f.default_factory is not dataclasses.MISSING:
            spec[field_name] = (hints[field_name], Field(default_factory=f.default_factory))
        else:
            spec[field_name] = (hints[field_name], ... if f.default is dataclasses.MISSING else f.default)
    return create_model(name, **spec)


AnswerOut = wire_model(Answer, "AnswerOut")


class RecordsUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[dict[str, Any]] = Field(min_length=1, max_length=100000)
    name: str = Field(
        "records",
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="name of the records file (its document ids derive from it)",
    )
    text_field: str | None = None
    id_field: str | None = None
    metadata_fields: list[str] = []
    allowed_groups: list[str] = []


class JobAccepted(BaseModel):
    job_id: str
    status: str
    files: list[str]


class FileResultOut(BaseModel):
    file: str
    status: str
    documents: int = 0
    chunks: int = 0
    reason: str = ""


class SyncSummary(BaseModel):
    added: int
    updated: int
    unchanged: int
    deleted: int
    failed: int


class JobOut(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done", "failed"]
    kind: str
    created_at: str
    finished_at: str | None
    files: list[str]
    total: int
    done: int
    results: list[FileResultOut]
    error: str | None
    summary: SyncSummary | None = Field(None, description="sync jobs: what the run changed, in documents")


class ParseReport(BaseModel):
    """How the document was parsed (recorded at ingest; empty for documents ingested before the
    report existed, and for JSON/JSONL records)."""

    loader: str | None = Field(None, description="the format's loader: pdf, docx, pptx, xlsx, csv, eml, png, ...")
    units: int | None = Field(None, description="how many of ``unit`` the file has")
    unit: str | None = Field(None, description="pages, slides, sheets, rows, attachments or sections")
    chars: int | None = Field(None, description="characters of text extracted")
    ocr_share: float | None = Field(None, description="share of those characters read by OCR, 0 to 1")
    warnings: str | None = Field(None, description="what was skipped while parsing, '; '-joined ('' when nothing)")


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    label: str = Field(description="the document's name for a reader: the file name, and a record's id and title")
    title: str
    chunks: int
    chars: int
    type: str
    tenant: str | None
    allowed_groups: list[str]
    ingested_at: str
    content_hash: str
    parse: ParseReport = Field(default_factory=ParseReport, description="the parsing report")


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    total: int
    offset: int
    limit: int


class ChunkOut(BaseModel):
    chunk_id: str
    position: int
    heading: str
    page: int | None
    text: str


class DocumentDetail(DocumentOut):
    chunk_list: list[ChunkOut]


class Deleted(BaseModel):
    doc_id: str
    deleted: bool
    version: int | None


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer_id: str = Field(min_length=1, max_length=64)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=4000)


class FeedbackOut(BaseModel):
    answer_id: str
    recorded: bool


class AuditRecord(BaseModel):
    model_config = ConfigDict(extra="allow")
    answer_id: str
    created_at: str
    caller: str
    question: str
    abstained: bool
    feedback: list[dict[str, Any]] = []


class VersionOut(BaseModel):
    """An index version; the totals are null for a key that may not see every tenant's documents."""

    version: int
    created_at: str
    storage_version: int | None
    added: int | None
    updated: int | None
    deleted: int | None
    documents: int | None
    chunks: int | None
    changed_doc_ids: list[str]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    index: bool
    model: bool


# -- OpenAI Chat Completions (the subset Groundwork implements; extra fields are accepted and ignored) --
class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ToolFunction(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = Field(None, max_length=4000)
    parameters: dict[str, Any] | None = None


class ToolIn(BaseModel):
    type: Literal["function"]
    function: ToolFunction


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field("groundwork", max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    filter: str | None = Field(None, max_length=2000, description="Groundwork extension: metadata filter")
    mode: Mode | None = Field(None, description="Groundwork extension: retrieval mode")
    tools: list[ToolIn] | None = Field(
        None,
        max_length=128,
        description="OpenAI tools (functions) the model may call; their calls come back as tool_calls",
    )
    tool_choice: str | dict[str, Any] | None = Field(
        None, description="OpenAI tool_choice: none, auto, required, or {type: function, function: {name}}"
    )


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"]
    function: dict[str, str] = Field(description="{name, arguments}: arguments is JSON text")


class ChatMessageOut(BaseModel):
    role: Literal["assistant"]
    content: str | None
    citations: list[Citation]
    tool_calls: list[ToolCallOut] | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: Literal["stop", "tool_calls"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    answer_id: str
    pending_actions: list[dict[str, Any]] | None = Field(
        None, description="agent mode: actions proposed in this turn that wait for a person (confirm or reject them)"
    )
    agent: dict[str, Any] | None = Field(
        None,
        description="agent mode: decision (answer, abstain, escalate, refuse, client_tools), confidence, review_id",
    )


class PendingActionOut(BaseModel):
    id: str
    action: str
    arguments: dict[str, Any]
    caller: str = Field(description="the key name that proposed it (never the key)")
    tenant: str | None
    answer_id: str
    created_at: str
    status: Literal["pending", "running", "done", "failed", "rejected"]
    decided_by: str | None
    decided_at: str | None
    result: dict[str, Any] | None = Field(None, description="ok, status, output or error, attempts, ms")


class Me(BaseModel):
    name: str
    scopes: list[str]
    tenant: str | None
    groups: list[str]
    no_auth: bool = Field(description="the server runs with --no-auth: every request is this caller, no key needed")
    sync_configured: bool = Field(
        description="admin keys: whether serve.sync_paths or serve.sources names a source, so POST /v1/sync has work to do; "
        "false for other keys"
    )


# -- OpenAI Models (GET /v1/models) --
class ModelOut(BaseModel):
    id: str = Field(description="the value to send as `model` in POST /v1/chat/completions")
    object: Literal["model"]
    created: int = Field(description="Unix time (seconds) of the knowledge base's first index version; 0 before any")
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


class EvalResult(BaseModel):
    name: str = Field(description="file name of the result")
    modified: str
    kind: Literal["compare", "single"]
    results: dict[str, dict[str, Any]] = Field(
        description="configuration label -> metrics (per_type included where reported)"
    )


# -- the review queue (admin) --------------------------------------------------------------------------
class ReviewOut(BaseModel):
    """One review item (groundwork.state.reviews.ReviewItem)."""

    review_id: str
    created_at: str
    kind: str = Field(description="not_helpful | low_grounding | escalation | manual")
    status: str = Field(description="open | resolved | dismissed")
    question: str
    answer: str
    evidence: list[dict[str, Any]] = Field(description="citations / retrieved chunks: chunk_id, doc_id, source, score")
    answer_id: str | None
    tenant: str | None
    groups: list[str] | None = Field(description="the asker's groups; null: the asker saw everything")
    reasons: list[str]
    asker: str | None = Field(description="the asking key's name (never the key)")
    resolved_at: str | None
    resolution: dict[str, Any] | None


class NewDocument(BaseModel):
    """New knowledge written by the reviewer, ingested as a document (a new index version)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000, description="the document's text (Markdown)")
    title: str | None = Field(None, max_length=200, description="its heading; default: the question")
    tenant: str | None = Field(
        None, max_length=128, description="default: the reviewer key's tenant; only a key without a tenant may choose"
    )
    groups: list[str] = Field(
        default_factory=list, max_length=64, description="groups that may see it; only groups of the reviewer's key"
    )


class ResolveIn(BaseModel):
    """At least one of ``answer``, ``doc_ids``, ``document``."""

    model_config = ConfigDict(extra="forbid")
    answer: str | None = Field(None, max_length=20_000, description="the correct answer (the eval reference)")
    doc_ids: list[str] = Field(
        default_factory=list, max_length=50, description="documents that answer it (ids the reviewer's key may see)"
    )
    document: NewDocument | None = None


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=4000)


class EscalationOut(BaseModel):
    review_id: str
    status: Literal["open", "resolved", "dismissed"]
    question: str
    reply: str | None = Field(description="the reviewer's answer once the escalation is resolved; null until then")
    replied_at: str | None
    answer_id: str | None = Field(description="the escalated turn's audit record")
