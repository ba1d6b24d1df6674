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


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field("groundwork", max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    filter: str | None = Field(None, max_length=2000, description="Groundwork extension: metadata filter")
    mode: Mode | None = Field(None, description="Groundwork extension: retrieval mode")


class ChatMessageOut(BaseModel):
    role: Literal["assistant"]
    content: str
    citations: list[Citation]


class ChatChoice(BaseModel):
    index: int
    message: ChatMessageOut
    finish_reason: Literal["stop"]


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


class Me(BaseModel):
    name: str
    scopes: list[str]
    tenant: str | None
    groups: list[str]
    no_auth: bool = Field(description="the server runs with --no-auth: every request is this caller, no key needed")
    sync_configured: bool = Field(
        description="admin keys: whether serve.sync_paths names a folder, so POST /v1/sync has work to do; "
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
