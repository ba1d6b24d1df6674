"""Dataclasses that flow between pipeline stages (ingest -> index -> retrieve -> answer).

They are plain data: no stage imports another stage's classes, only these. ``Citation``,
``GuardDecision`` and ``Answer`` are also the wire format: ``to_wire`` gives the JSON of
``ask --json`` and of the HTTP API, and the OpenAPI schema is generated from the same fields
(a field with ``metadata={"wire": False}`` stays inside the process).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any


@dataclass(frozen=True)
class Section:
    """A structural unit of a loaded document: a Markdown/HTML/DOCX section, a PDF page, a record.

    ``heading_path`` is the chain of headings above the text (outermost first); ``page`` is 1-based
    and set only where the format has pages: a PDF page, a PPTX slide, a spreadsheet's (first) row
    (``page_label`` names the unit). ``metadata`` is added to the metadata of the section's chunks
    (OCR: ``ocr`` and ``ocr_confidence``).
    """

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


INTERNAL = {"wire": False}  # field metadata: not part of the wire format


def wire_fields(cls: type) -> list[str]:
    """The names of a dataclass's fields that are on the wire, in declaration order."""
    return [f.name for f in fields(cls) if f.metadata.get("wire", True)]


def to_wire(obj: Any) -> dict[str, Any]:
    """A dataclass as JSON-able data: its wire fields, nested dataclasses included."""
    return {name: _plain(getattr(obj, name)) for name in wire_fields(type(obj))}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_wire(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# Tenant and group names: a letter or digit first (so never "." or ".."), then letters, digits and
# _ . : @ - ; no quotes, separators or '|' (they are written into SQL literals and document ids).
ACL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
ACL_NAME_RULE = "1-128 characters: a letter or digit first, then letters, digits and _ . : @ -"


@dataclass(frozen=True)
class Access:
    """Who is asking, for per-document access control (applied inside every store query).

    A document with tenant T is visible only to callers of tenant T; a document without a tenant only
    to callers without one. A document with ``allowed_groups`` is visible only to callers sharing at
    least one group; without groups, to every caller of its tenant. ``everything`` (the CLI, and the
    server's --no-auth development mode) sees all documents.
    """

    tenant: str | None = None
    groups: tuple[str, ...] = ()
    everything: bool = False

    @classmethod
    def all(cls) -> Access:
        return cls(everything=True)

    def can_see(self, tenant: str | None, allowed_groups: Sequence[str]) -> bool:
        if self.everything:
            return True
        return tenant == self.tenant and (not allowed_groups or bool(set(allowed_groups) & set(self.groups)))


@dataclass
class Document:
    """One source document: a file, or one record of a JSON/JSONL file.

    ``doc_id`` is stable across runs (the file path, or the record's id field); ``content_hash`` is the
    sha256 of the raw content, used by sync to skip unchanged documents without re-embedding.
    """

    doc_id: str
    source: str
    sections: list[Section]
    content_hash: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    allowed_groups: tuple[str, ...] = ()
    # "field: value" lines of the metadata that describe the document (a record's declared fields),
    # indexed after the title with every chunk (see Chunk.search_text); "" when none.
    context: str = ""

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


@dataclass
class Chunk:
    """A retrievable piece of a document.

    ``position`` is the 0-based order within the document; ``parent_id``/``parent_text`` are set by
    the hierarchical chunker (the child is matched, the parent is returned as context).
    ``vector`` is (dim,) float32 L2-normalised once embedded, else None. ``tokens`` is the chunker's
    count of ``text`` in the embedder's word pieces (None when unknown): ingest orders the embedding
    batches by it (it never changes a vector, and is not stored).
    """

    chunk_id: str
    doc_id: str
    source: str
    position: int
    text: str
    content_hash: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    title: str = ""
    parent_id: str | None = None
    parent_text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    vector: Any = None
    tenant: str | None = None
    allowed_groups: tuple[str, ...] = ()
    tokens: int | None = field(default=None, compare=False)
    context: str = ""  # the document's context lines (Document.context), indexed with the chunk

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)

    @property
    def search_head(self) -> str:
        """What ``search_text`` puts before the text ("" when none): a line of the title and heading
        path, then the document's context lines (e.g. ``source: Mashable``)."""
        head = " > ".join(p for p in (self.title, *self.heading_path) if p)
        head = head if head and not self.text.startswith(head) else ""
        return "\n".join(p for p in (head, self.context) if p)

    @property
    def search_text(self) -> str:
        """What is embedded and indexed for BM25: the title, heading path and the document's context
        lines give a chunk its context (contextual chunk text, as in Anthropic's "Contextual Retrieval",
        2024, and LlamaIndex's metadata in the embedded text)."""
        head = self.search_head
        return f"{head}\n{self.text}" if head else self.text


@dataclass
class SearchHit:
    """A chunk with its rank score. ``score`` orders one result list (a fused hybrid score is relative
    to its query: the best hit of any query scores 1.0); ``relevance`` means the same across queries:
    the cosine similarity of the query and chunk embeddings in [-1, 1] (None in bm25 mode, where the
    query is not embedded). ``scores`` keeps each retriever's own score (bm25, dense)."""

    chunk: Chunk
    score: float
    rank: int
    scores: dict[str, float] = field(default_factory=dict)
    relevance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": self.score,
            "relevance": self.relevance,
            "scores": self.scores,
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "source": c.source,
            "title": c.title,
            "heading": c.heading,
            "page": c.page,
            "position": c.position,
            "text": c.text,
            "metadata": c.metadata,
        }


@dataclass
class DocumentHit:
    """A document in a result list grouped by document (``retrieval.group_by = "document"``).

    ``score`` orders the list: by default the fused score of the document's best chunk
    (``retrieval.group_score``); ``rank`` is 1-based among documents. ``passages`` are the document's
    best chunks among those ranked (at most ``retrieval.group_passages``), best first, each with its
    own chunk score and its rank in the chunk ranking; ``matched`` counts all of its ranked chunks.
    ``relevance`` is the best passage's (see SearchHit)."""

    doc_id: str
    source: str
    title: str
    score: float
    rank: int
    passages: list[SearchHit]
    matched: int
    relevance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire format of ``search --group-by document --json`` and of ``/v1/search``."""
        return {
            "rank": self.rank,
            "score": self.score,
            "relevance": self.relevance,
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "metadata": self.passages[0].chunk.metadata if self.passages else {},
            "matched": self.matched,
            "passages": [p.to_dict() for p in self.passages],
        }


@dataclass
class ContextChunk:
    """A numbered piece of context; ``n`` is the citation number, ``text`` what the generator reads."""

    n: int
    hit: SearchHit
    text: str
    tokens: int


def document_label(doc_id: str, source: str, title: str = "") -> str:
    """A document's name for a reader: its file name; for a record of a records file (its id is not its
    source) also the record id and title, so the records of one file can be told apart."""
    name = source.rstrip("/").rsplit("/", 1)[-1]
    if doc_id == source:
        return name
    label = f"{name} #{doc_id.rsplit('#', 1)[-1]}"
    return f"{label}, {title}" if title else label


# What a chunk's ``page`` counts, by the file type of its document (default: pages).
PAGE_UNITS = {".pptx": "slide", ".xlsx": "row", ".csv": "row", ".tsv": "row"}


def _suffix(name: str) -> str:
    last = name.rstrip("/").rsplit("/", 1)[-1]
    return "." + last.rsplit(".", 1)[1].lower() if "." in last else ""


def page_label(doc_id: str, source: str, page: int | None, heading: str = "") -> str:
    """Where a chunk is in its document, for a reader: ``p. 4``, ``slide 3``, ``sheet S, row 5``
    (a spreadsheet's sheet is its heading; a group of rows says ``rows 21-40``); "" without a page.
    The unit comes from the document id's file type (an e-mail attachment's id names the attachment),
    else the source's."""
    if page is None:
        return ""
    unit = PAGE_UNITS.get(_suffix(doc_id)) or PAGE_UNITS.get(_suffix(source)) or "p."
    if unit != "row":
        return f"{unit} {page}"
    parts = heading.split(" > ") if heading else []
    if parts and parts[-1].startswith("rows "):
        return ", ".join(parts)
    return ", ".join([*parts, f"row {page}"])


@dataclass
class Citation:
    """A chunk an answer cites; ``n`` is the number used in the answer's ``[n]`` markers."""

    n: int
    doc_id: str
    chunk_id: str
    source: str
    score: float
    text: str
    heading: str = ""
    page: int | None = None
    flags: list[str] = field(default_factory=list)  # e.g. "prompt_injection" when a guardrail flagged the chunk
    title: str = ""

    @property
    def label(self) -> str:
        """How a reader finds it (see ``document_label``), with the page, slide or sheet row (``page_label``)."""
        label = document_label(self.doc_id, self.source, self.title)
        where = page_label(self.doc_id, self.source, self.page, self.heading)
        return f"{label}, {where}" if where else label


@dataclass
class GuardDecision:
    """One guardrail's verdict. ``stage`` is input|context|output; ``action`` is what was done:
    blocked|masked|flagged (a guard that found nothing records no decision). ``targets`` names what
    it applied to (chunk ids, PII kinds, topic), ``score`` the measured value where there is one."""

    guard: str
    stage: str
    action: str
    detail: str
    score: float | None = None
    targets: list[str] = field(default_factory=list)


@dataclass
class TokenUsage:
    """Tokens one answer used: ``prompt_tokens`` (input) and ``completion_tokens`` (output) over every
    LLM call (generation, rewriting, decomposition, LLM reranking); ``source`` is ``backend`` (what
    each LLM call reported: the API's ``usage`` where it returns one, else the model's tokenizer or
    the characters/4 estimate), ``tokenizer`` (no LLM call, e.g. the extractive generator: counted
    with the generator's tokenizer) or ``cached`` (served from the answer cache: nothing was
    generated, 0 tokens). ``cost_usd`` comes from the ``pricing`` table (0 for an unlisted model)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    source: str = "tokenizer"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Answer:
    """The result of ``ask``. ``timings_ms`` has keys rewrite, embed, retrieve, rerank, assemble,
    generate, guard, total (milliseconds).

    ``question`` is what was asked; ``search_query`` the stand-alone question actually searched (after
    follow-up rewriting) and ``sub_questions`` the decomposition, when used. ``prompt`` is the prompt
    template reference (``id@version#hash``), ``model_id`` the generator's model; ``guardrails`` every
    guardrail decision; ``flags`` generator findings (``no_valid_citation``, ``fallback``, ...).
    """

    question: str = field(metadata=INTERNAL)
    answer: str
    abstained: bool
    citations: list[Citation]
    timings_ms: dict[str, float]
    hits: list[SearchHit] = field(default_factory=list, metadata=INTERNAL)
    evidence_score: float | None = field(default=None, metadata=INTERNAL)  # what abstention was decided on
    answer_id: str = ""
    search_query: str = ""
    sub_questions: list[str] = field(default_factory=list)
    model_id: str = ""
    prompt: str | None = None
    guardrails: list[GuardDecision] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    invalid_citations: int = 0
    blocked: bool = False
    notice: str | None = None
    index_version: int | None = None
    usage: TokenUsage | None = None
    cached_from: str | None = None  # the answer id this answer was served from (answer cache), else None

    def to_dict(self) -> dict[str, Any]:
        """The wire format (``to_wire``): what ``ask --json`` prints and ``/v1/answer`` returns."""
        return to_wire(self)


@dataclass
class DocumentInfo:
    """What the store knows about an indexed document (no chunk text)."""

    doc_id: str
    source: str
    content_hash: str
    pipeline_hash: str
    chunks: int
    title: str = ""
    tenant: str | None = None
    allowed_groups: list[str] = field(default_factory=list)
    ingested_at: str = ""
    chars: int = 0  # characters of chunk text (a size that does not depend on the file format)
    parse: dict[str, Any] = field(default_factory=dict)  # the parsing report: see ``parse_report``


PARSE_PREFIX = "parse_"  # metadata fields of the parsing report (set by the loaders at ingest)


def parse_report(metadata: dict[str, Any]) -> dict[str, Any]:
    """The parsing report in a chunk's metadata, without the prefix: ``loader`` (format), ``units`` and
    ``unit`` (12 "pages", 8 "slides", 3 "sheets", 40 "rows"), ``chars`` (characters extracted),
    ``ocr_share`` (0 to 1: the share of them read by OCR) and ``warnings`` ("; "-joined, "" when none).
    Empty for a document ingested before the report existed, and for JSON/JSONL records."""
    return {k[len(PARSE_PREFIX) :]: v for k, v in metadata.items() if k.startswith(PARSE_PREFIX)}


@dataclass
class FileResult:
    """Outcome of one input file in an ingest run: status is added|updated|unchanged|failed|skipped."""

    path: str
    status: str
    documents: int = 0
    chunks: int = 0
    reason: str = ""


@dataclass
class IngestReport:
    """Summary of one ingest run. Counts are documents; ``failed`` lists files with their reason."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: list[FileResult] = field(default_factory=list)
    skipped: list[FileResult] = field(default_factory=list)
    chunks_written: int = 0
    chunks_embedded: int = 0
    version: int | None = None
    seconds: float = 0.0
    files: list[FileResult] = field(default_factory=list)  # every input file's result, in order
    not_modified: int = 0  # web pages answered 304 Not Modified (conditional requests): not downloaded

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = [asdict(f) for f in self.failed]
        d["skipped"] = [asdict(f) for f in self.skipped]
        d["files"] = [asdict(f) for f in self.files]
        return d


@dataclass
class IndexVersion:
    """One recorded change of the index. ``storage_version`` is the LanceDB table version after it."""

    version: int
    created_at: str
    storage_version: int
    added: int
    updated: int
    deleted: int
    documents: int
    chunks: int
    changed_doc_ids: list[str] = field(default_factory=list)
