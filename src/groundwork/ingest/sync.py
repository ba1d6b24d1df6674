"""Ingest runs: discover files, skip what is unchanged, chunk and embed the rest, write in atomic
batches, delete what disappeared, and record an index version.

Guarantees:
- Idempotent: a document whose content hash and chunking settings are unchanged costs one hash and
  no parsing, chunking or embedding.
- One bad file never stops a run: it is reported with its path and reason, and whatever it had in the
  index before stays there.
- Crash-safe: documents are written in batches, each one commit (see ``Store.replace_documents``);
  deletions are one commit at the end. After a kill -9 the index holds whole documents only, and a
  rerun finishes the work with no duplicate chunks.
- Self-repairing: a document whose stored chunks are inconsistent (a chunk id stored twice, rows of
  two versions: see ``groundwork.index.check``) is never taken as unchanged. Its redundant rows are
  deleted first (its newest version stays whole), then it is re-chunked and rewritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from groundwork.config import IngestSettings
from groundwork.errors import LoaderError, UnsupportedFileError
from groundwork.index.check import scan_rows
from groundwork.index.embedder import Embedder
from groundwork.index.store import Store
from groundwork.ingest.chunking import Chunker
from groundwork.ingest.chunking.semantic import SemanticChunker
from groundwork.ingest.loaders import LoadLimits, load_file
from groundwork.ingest.metadata import MetadataKinds
from groundwork.ingest.overlap import BatchWriter
from groundwork.ingest.records import RecordOptions
from groundwork.ingest.sources import SourceItem, local_item
from groundwork.types import ACL_NAME, ACL_NAME_RULE, Chunk, Document, DocumentInfo, FileResult, IngestReport

ProgressFn = Callable[[str, int, int], None]  # (current path, files done, files total)


@dataclass
class _Batch:
    hashes: dict[str, str] = field(default_factory=dict)  # doc_id -> content hash
    chunks: list[Chunk] = field(default_factory=list)


def discover(paths: Sequence[Path], exclude: Path | None = None) -> tuple[list[Path], list[Path], list[FileResult]]:
    """Expand folders (recursively, hidden entries skipped) into files.

    Returns (files, folders given, results for paths that do not exist).
    """
    files: list[Path] = []
    folders: list[Path] = []
    missing: list[FileResult] = []
    exclude = exclude.resolve() if exclude else None
    for p in paths:
        p = Path(p).expanduser().resolve()
        if p.is_dir():
            folders.append(p)
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if (
                    f.is_file()
                    and not any(part.startswith(".") for part in rel)
                    and not (exclude and f.is_relative_to(exclude))
                ):
                    files.append(f)
        elif p.is_file():
            files.append(p)
        else:
            missing.append(FileResult(str(p), "failed", reason="no such file or folder"))
    return list(dict.fromkeys(files)), folders, missing


@dataclass(frozen=True)
class DocumentAcl:
    """Access control given to the documents of an ingest run: fixed values, or metadata fields.

    Raises LoaderError (failing that document only) for a tenant or group name with characters other
    than letters, digits and ``_ . : @ -``.
    """

    tenant: str | None = None
    groups: tuple[str, ...] = ()
    tenant_field: str | None = None
    groups_field: str | None = None

    @property
    def fingerprint(self) -> str:
        if not (self.tenant or self.groups or self.tenant_field or self.groups_field):
            return ""
        return f"|acl:{self.tenant}:{','.join(sorted(self.groups))}:{self.tenant_field}:{self.groups_field}"

    def apply(self, doc: Document) -> None:
        tenant, groups = self.tenant, self.groups
        if self.tenant_field and doc.metadata.get(self.tenant_field) not in (None, ""):
            tenant = str(doc.metadata[self.tenant_field])
        if self.groups_field and doc.metadata.get(self.groups_field) not in (None, ""):
            raw = doc.metadata[self.groups_field]
            groups = tuple(
                str(g).strip() for g in (raw if isinstance(raw, list) else str(raw).split(",")) if str(g).strip()
            )
        for name in (tenant, *groups):
            if name is not None and not ACL_NAME.match(name):
                raise LoaderError(doc.source, f"invalid tenant or group name {name!r}: {ACL_NAME_RULE}")
        doc.tenant, doc.allowed_groups = tenant, tuple(sorted(set(groups)))


class Ingestor:
    """Syncs files into a store.

    Args:
        store: where chunks go. embedder: turns chunk texts into vectors (cached).
        chunker: splits documents. settings: size limit and batch size. records: JSON field options.
        text_transform: applied to every chunk's text before it is embedded and stored (PII masking at
        ingest); ``transform_id`` names it, and is part of the pipeline fingerprint, so turning it on or
        off re-processes every document on the next run.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        chunker: Chunker,
        settings: IngestSettings,
        records: RecordOptions | None = None,
        exclude: Path | None = None,
        text_transform: Callable[[str], str] | None = None,
        transform_id: str = "",
        acl: DocumentAcl | None = None,
        namespace_ids: bool = False,
        replace_foreign: bool = True,
    ) -> None:
        self.store, self.embedder, self.chunker, self.settings = store, embedder, chunker, settings
        self.namespace_ids = namespace_ids  # record ids become "<source>#<id>" (uploads: per-tenant names)
        self.replace_foreign = replace_foreign  # the operator may re-assign a document's owner; a key may not
        self.kinds = MetadataKinds(None)
        self.records_given = records is not None and records != RecordOptions()
        self.stored_options: dict[str, dict] = {}
        self.records = records or RecordOptions(
            settings.text_field, settings.id_field, tuple(settings.metadata_fields), title_field=settings.title_field
        )
        self.limits = LoadLimits.from_settings(settings)
        self.exclude = exclude
        self.text_transform = text_transform
        self.acl = acl or DocumentAcl()
        # Access control is part of the fingerprint: re-ingesting with other groups updates every document.
        fingerprint = chunker.fingerprint + (f"|{transform_id}" if text_transform else "") + self.acl.fingerprint
        self.pipeline_hash = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        # Encoding overlaps parsing unless the chunker runs the model itself (semantic chunking).
        self.overlap = settings.overlap_encode and not isinstance(chunker, SemanticChunker)
        self._writer = BatchWriter(background=False)

    def run(
        self,
        paths: Sequence[Path | str],
        sync: bool = True,
        progress: ProgressFn | None = None,
        items: Sequence[SourceItem] = (),
        owned: Iterable[str] = (),
        failed: Sequence[FileResult] = (),
    ) -> IngestReport:
        """Ingest ``paths`` (files, folders, ``s3://bucket/prefix``) and ``items``. With ``sync``,
        documents that vanished from a given folder or prefix, or records that vanished from a given
        JSON file, are deleted from the index, as are the documents in ``owned`` (ids a source such as
        a web site yielded before) that no item of this run yields. ``failed``: sources that failed
        before the run (listed in the report)."""
        started = time.perf_counter()
        report = IngestReport()
        report.failed.extend(failed)
        local = [Path(p) for p in paths if not str(p).startswith("s3://")]
        files, folders, missing = discover(local, self.exclude)
        report.failed.extend(missing)
        all_items = [local_item(f) for f in files] + list(items)
        roots = [str(f) + "/" for f in folders]
        for uri in (str(p) for p in paths if str(p).startswith("s3://")):
            from groundwork.ingest.s3 import list_s3

            try:
                found, root = list_s3(uri, self.settings)
            except LoaderError as exc:  # an unreachable bucket fails that source only; nothing is deleted
                report.failed.append(FileResult(uri, "failed", reason=exc.reason))
                continue
            all_items += found
            roots += [root] if root else []
        self.store.check_model(self.embedder.model_id, self.embedder.dimension)
        self.kinds = MetadataKinds(self.store.metadata_kinds())
        self.stored_options = self.store.record_options()
        suspect = self._reverify()
        existing = {d.doc_id: d for d in self.store.list_documents()}
        for doc_id in suspect & existing.keys():
            # A blank pipeline hash matches no run's: both engines re-chunk and rewrite the document.
            existing[doc_id] = dataclasses.replace(existing[doc_id], pipeline_hash="")
        by_source: dict[str, list[str]] = {}
        for d in existing.values():
            by_source.setdefault(d.source, []).append(d.doc_id)
        seen: set[str] = set()
        changed: list[str] = []
        with BatchWriter(self.overlap) as self._writer:
            self._process(all_items, existing, by_source, seen, changed, report, progress)
        if sync:
            # Files of several documents (records, an e-mail and its attachments) lose the ones they no longer hold.
            listed = {i.source for i in all_items if i.is_records or i.name.suffix.lower() == ".eml"} | set(owned)
            gone = self._vanished(existing.values(), roots, listed, seen)
            if gone:
                self.store.delete_documents(gone)
                report.deleted = len(gone)
                changed.extend(gone)
        if report.changed or suspect:  # rows deleted by the re-verify are a change too, even when not rewritten
            changed.extend(sorted(suspect - set(changed)))
            self.store.optimize()
            report.version = self.store.record_version(report.added, report.updated, report.deleted, changed).version
        report.seconds = time.perf_counter() - started
        return report

    def _reverify(self) -> set[str]:
        """The documents whose stored chunks are inconsistent, after deleting their redundant rows
        (one commit; each keeps its newest version whole, so a failed rewrite leaves a clean document)."""
        scan = scan_rows(self.store.stored_rows())
        if scan.redundant:
            self.store.drop_rows(scan.redundant)
        return set(scan.affected)

    def _process(
        self,
        items: Sequence[SourceItem],
        existing: dict[str, DocumentInfo],
        by_source: dict[str, list[str]],
        seen: set[str],
        changed: list[str],
        report: IngestReport,
        progress: ProgressFn | None,
    ) -> None:
        """Load, chunk, embed and write every item, one after the other (the local engine)."""
        batch = _Batch()
        for i, item in enumerate(items):
            if progress:
                progress(item.source, i, len(items))
            result = self._ingest_file(item, existing, by_source, seen, batch, changed, report)
            self._record(result, item, by_source, seen, report)
        self._flush(batch, report)
        if progress:
            progress("", len(items), len(items))

    @staticmethod
    def _record(
        result: FileResult, item: SourceItem, by_source: dict[str, list[str]], seen: set[str], report: IngestReport
    ) -> None:
        report.files.append(result)
        if result.status == "failed":
            report.failed.append(result)
            seen.update(by_source.get(item.source, []))  # keep what a now-broken file had indexed
        elif result.status == "skipped":
            report.skipped.append(result)

    def _unchanged_file(
        self, item: SourceItem, existing: dict[str, DocumentInfo], raw: bytes | None
    ) -> DocumentInfo | None:
        """The indexed document when ``item`` is a non-record file whose fingerprint (or bytes' sha256)
        and chunking settings are unchanged: recognised before parsing (and, with a fingerprint, reading)."""
        prev = existing.get(item.source)
        if item.is_records or prev is None or prev.pipeline_hash != self.pipeline_hash:
            return None
        token = (
            item.fingerprint
            if item.fingerprint is not None
            else (hashlib.sha256(raw).hexdigest() if raw is not None else None)
        )
        return prev if token is not None and prev.content_hash == token else None

    def read(self, item: SourceItem) -> tuple[bytes | None, FileResult | None]:
        """(raw bytes, None), or (None, a failed/skipped result naming the file and the reason)."""
        try:
            return item.read(int(self.settings.max_file_mb * 1e6)), None
        except UnsupportedFileError as exc:
            return None, FileResult(item.source, "skipped", reason=exc.reason)
        except LoaderError as exc:
            return None, FileResult(item.source, "failed", reason=exc.reason)
        except OSError as exc:
            return None, FileResult(item.source, "failed", reason=f"cannot read the file ({exc.strerror or exc})")

    def parse(self, item: SourceItem, raw: bytes) -> tuple[list[Document], FileResult | None]:
        """The item's documents, or a failed result (a parser error on one file never stops a run)."""
        records = self._records_for(item)
        try:
            docs = load_file(item.name, raw, records, self.limits)
        except LoaderError as exc:
            return [], FileResult(item.source, "failed", reason=exc.reason)
        except Exception as exc:
            return [], FileResult(item.source, "failed", reason=f"{type(exc).__name__}: {exc}")
        if item.fingerprint is not None and not item.is_records:
            for d in docs:
                d.content_hash = item.fingerprint  # what the next run compares before downloading
        if item.is_records and self.records_given and self.store is not None:  # None: a Ray worker
            self.store.save_record_options(item.source, options_dict(records))
        return docs, None

    def _records_for(self, item: SourceItem) -> RecordOptions:
        """The records options of ``item``: the ones given to this run, else the ones it was last
        ingested with, else the defaults; record ids namespaced by the source when asked."""
        records = self.records
        if item.is_records and not self.records_given:
            stored = self.stored_options.get(item.source)
            if stored:
                records = RecordOptions(
                    stored.get("text_field"),
                    stored.get("id_field"),
                    tuple(stored.get("metadata_fields") or ()),
                    title_field=stored.get("title_field"),
                )
        records = replace(
            records,
            metadata_context=self.settings.metadata_context,
            context_exclude=tuple(f for f in (self.acl.tenant_field, self.acl.groups_field) if f),
        )
        return replace(records, id_prefix=f"{item.source}#") if self.namespace_ids else records

    def _ingest_file(
        self,
        item: SourceItem,
        existing: dict[str, DocumentInfo],
        by_source: dict[str, list[str]],
        seen: set[str],
        batch: _Batch,
        changed: list[str],
        report: IngestReport,
    ) -> FileResult:
        source = item.source
        raw: bytes | None = None
        if item.fingerprint is None:
            raw, failed = self.read(item)
            if failed is not None:
                return failed
        # Fast path: an unchanged file is recognised by its fingerprint or the hash of its bytes, before parsing.
        if prev := self._unchanged_file(item, existing, raw):
            seen.add(source)
            seen.update(by_source.get(source, []))  # an e-mail's attachments are documents of the same source
            report.unchanged += 1
            return FileResult(source, "unchanged", documents=1, chunks=prev.chunks)
        if raw is None:
            raw, failed = self.read(item)
            if failed is not None:
                return failed
        docs, failed = self.parse(item, raw)
        if failed is not None:
            return failed
        changed_docs = [d for d in docs if not self._unchanged(d, existing)]
        refused = {d.doc_id: reason for d in changed_docs if (reason := self._refusal(d, existing))}
        if refused and not item.is_records:
            return FileResult(source, "failed", reason=next(iter(refused.values())))
        try:
            pending = [(d, self._chunk(d)) for d in changed_docs if d.doc_id not in refused]
        except LoaderError as exc:
            return FileResult(source, "failed", reason=exc.reason)
        except Exception as exc:
            return FileResult(source, "failed", reason=f"{type(exc).__name__}: {exc}")
        seen.update(d.doc_id for d in docs)  # a refused record keeps what it had indexed
        for doc_id, reason in refused.items():
            report.failed.append(FileResult(f"{source}#{doc_id}", "failed", reason=reason))
        for problem in getattr(docs, "problems", []):  # bad records of a records file, one by one
            report.failed.append(FileResult(f"{source}#{problem.label}", "failed", reason=problem.reason))
            # Keep what the record had indexed. Without a readable id it cannot be told apart from a
            # deleted record, so nothing of this file is deleted in this run.
            seen.update([problem.doc_id] if problem.doc_id else by_source.get(source, []))
        report.unchanged += len(docs) - len(changed_docs)
        status = "unchanged"
        for doc, chunks in pending:
            is_update = doc.doc_id in existing
            report.updated += is_update
            report.added += not is_update
            status = "updated" if is_update else "added"
            batch.hashes[doc.doc_id] = doc.content_hash
            batch.chunks.extend(chunks)
            changed.append(doc.doc_id)
            if len(batch.chunks) >= self.settings.batch_chunks:  # a records file can hold thousands of documents
                self._flush(batch, report)
        return FileResult(source, status, documents=len(docs), chunks=sum(len(c) for _, c in pending))

    def _refusal(self, doc: Document, existing: dict[str, DocumentInfo]) -> str | None:
        """Why ``doc`` may not be written, or None. A write may replace only a document of the same
        owner (tenant and allowed groups), and a metadata value must be of the kind its field holds."""
        self.acl.apply(doc)
        prev = existing.get(doc.doc_id)
        owner_changes = prev is not None and (prev.tenant, sorted(prev.allowed_groups)) != (
            doc.tenant,
            sorted(doc.allowed_groups),
        )
        if owner_changes and not self.replace_foreign:
            return (
                f"document id {doc.doc_id!r} is already used by a document of another tenant or other groups; "
                "give this document another id (or delete the other one first)"
            )
        return self.kinds.admit(doc.metadata)

    def _unchanged(self, doc: Document, existing: dict[str, DocumentInfo]) -> bool:
        prev = existing.get(doc.doc_id)
        return bool(prev and prev.content_hash == doc.content_hash and prev.pipeline_hash == self.pipeline_hash)

    def _chunk(self, doc: Document) -> list[Chunk]:
        self.acl.apply(doc)
        chunks = self.chunker.chunk(doc)
        if not chunks:
            raise LoaderError(doc.source, "no text to index after chunking")
        for c in chunks:
            c.tenant, c.allowed_groups = doc.tenant, doc.allowed_groups
        if self.text_transform:
            for c in chunks:
                masked = self.text_transform(c.text)
                if masked != c.text:  # the chunker's token count was of the text before masking
                    c.text, c.tokens = masked, None
                if c.parent_text:
                    c.parent_text = self.text_transform(c.parent_text)
        return chunks

    def _search_tokens(self, chunks: Sequence[Chunk]) -> list[int]:
        """Tokens of each chunk's ``search_text``: the chunker's count of its text plus the count of its
        head line (once per distinct head; word pieces never span the newline between them), or the
        whole search text counted when the chunker gave no count."""
        heads: dict[str, int] = {"": 0}
        out = []
        for c in chunks:
            if c.tokens is None:
                out.append(self.embedder.count_tokens(c.search_text))
                continue
            head = c.search_head
            if head not in heads:
                heads[head] = self.embedder.count_tokens(head)
            out.append(heads[head] + c.tokens)
        return out

    def _flush(self, batch: _Batch, report: IngestReport) -> None:
        """Hand the batch to the writer (embedded and written in the background with ``overlap``) and
        start a new one."""
        if not batch.hashes:
            return
        hashes, chunks = batch.hashes, batch.chunks
        batch.hashes, batch.chunks = {}, []
        self._writer.submit(lambda: self._write(hashes, chunks, report))

    def _write(self, hashes: dict[str, str], chunks: list[Chunk], report: IngestReport) -> None:
        """Embed the chunks that have no vector yet and write the documents in one commit."""
        before = getattr(self.embedder, "encoded", 0)
        todo = [c for c in chunks if c.vector is None]  # the Ray engine's chunks arrive embedded
        # Batches ordered by token count pad less than sentence-transformers' order by characters.
        vectors = self.embedder.embed([c.search_text for c in todo], self._search_tokens(todo)) if todo else []
        for chunk, vec in zip(todo, vectors):
            chunk.vector = vec
        self.store.replace_documents(hashes, chunks, self.pipeline_hash)
        report.chunks_written += len(chunks)
        report.chunks_embedded += getattr(self.embedder, "encoded", 0) - before

    @staticmethod
    def _vanished(
        existing: Iterable[DocumentInfo], roots: list[str], record_files: set[str], seen: set[str]
    ) -> list[str]:
        """Documents under a given folder/prefix (``roots``), or from a given records file or owned by a
        given source (``record_files``), not seen in this run."""
        prefixes = tuple(roots)
        gone = []
        for d in existing:
            if d.doc_id in seen:
                continue
            if d.source.startswith(prefixes) or d.source in record_files:
                gone.append(d.doc_id)
        return gone


def options_dict(r: RecordOptions) -> dict[str, object]:
    return {
        "text_field": r.text_field,
        "id_field": r.id_field,
        "metadata_fields": list(r.metadata_fields),
        "title_field": r.title_field,
    }
