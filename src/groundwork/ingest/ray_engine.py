"""Distributed ingestion on Ray: ``groundwork ingest --engine ray [--ray-address auto]``.

The driver lists the sources, reads them and decides what changed exactly as the local engine does
(the sync decision needs the index). Parsing + chunking and embedding then run as Ray Data stages:
``map_batches`` over actor pools (each actor loads the tokenizer / the embedding model once), and
the driver writes the results to the configured store in the same atomic batches as the local
engine. The chunker and the model are the same, so chunk ids are the same and vectors equal the
local engine's up to float rounding (batches are padded differently).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from groundwork.config import Settings
from groundwork.errors import LoaderError
from groundwork.index.device import place
from groundwork.ingest.sources import SourceItem
from groundwork.ingest.sync import Ingestor, ProgressFn, _Batch, options_dict
from groundwork.types import DocumentInfo, FileResult, IngestReport


class _ParseChunk:
    """Ray actor: raw bytes -> documents -> chunks (one output row per chunk, one per file result)."""

    def __init__(self, blob: bytes) -> None:
        from groundwork.index.embedder import load_embedder
        from groundwork.ingest.chunking import make_chunker

        settings, self.config, self.unchanged_records, stored_options = pickle.loads(blob)
        embedder = load_embedder(settings.embedder.model_copy(update={"cache": False}), None)
        self.ingestor = Ingestor(
            None, embedder, make_chunker(settings.chunking, embedder), settings.ingest, **self.config
        )  # type: ignore[arg-type]
        self.ingestor.stored_options = stored_options

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out: dict[str, list] = {"kind": [], "payload": [], "text": []}
        for blob in batch["item"]:
            name, raw, fingerprint = pickle.loads(blob)
            item = SourceItem(name, lambda _max, raw=raw: raw, fingerprint)
            docs, failed = self.ingestor.parse(item, raw)
            result: dict[str, Any] = {
                "source": item.source,
                "failed": failed,
                "docs": [],
                "problems": list(getattr(docs, "problems", [])),
            }
            chunks: list = []  # this file's chunks, kept only if the whole file chunks without error
            if failed is None:
                try:
                    for d in docs:
                        unchanged = self.unchanged_records.get(d.doc_id) == d.content_hash
                        mine = [] if unchanged else self.ingestor._chunk(d)
                        result["docs"].append((d.doc_id, d.content_hash, unchanged, len(mine)))
                        chunks += mine
                except Exception as exc:
                    reason = exc.reason if isinstance(exc, LoaderError) else f"{type(exc).__name__}: {exc}"
                    result = {
                        "source": item.source,
                        "failed": FileResult(item.source, "failed", reason=reason),
                        "docs": [],
                        "problems": [],
                    }
                    chunks = []
            for c in chunks:
                out["kind"].append("chunk"), out["payload"].append(pickle.dumps(c)), out["text"].append(c.search_text)
            out["kind"].append("file"), out["payload"].append(pickle.dumps(result)), out["text"].append("")
        return out


class _Embed:
    """Ray actor: embeds the chunk rows of a batch with the configured model (loaded once per actor)."""

    def __init__(self, blob: bytes) -> None:
        from groundwork.index.embedder import load_embedder

        settings = pickle.loads(blob)
        self.embedder = load_embedder(settings.embedder.model_copy(update={"cache": False}), None)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        kinds, texts = list(batch["kind"]), list(batch["text"])
        idx = [i for i, k in enumerate(kinds) if k == "chunk"]
        vecs = self.embedder.embed([texts[i] for i in idx]) if idx else np.zeros((0, 0), np.float32)
        vectors: list[bytes] = [b""] * len(kinds)
        for j, i in enumerate(idx):
            vectors[i] = np.asarray(vecs[j], np.float32).tobytes()
        return {"kind": kinds, "payload": list(batch["payload"]), "vector": vectors}


class RayIngestor(Ingestor):
    """An Ingestor whose parse/chunk/embed steps run on Ray. ``address``: None starts a local Ray
    (``num_cpus`` CPUs); ``"auto"`` or ``ray://host:10001`` joins a cluster. ``actors``: actors per stage."""

    def __init__(
        self,
        *args: Any,
        settings_all: Settings,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.settings_all, self.address, self.num_cpus, self.actors = settings_all, address, num_cpus, actors
        self._config = {
            "records": self.records,
            "text_transform": self.text_transform,
            "transform_id": kwargs.get("transform_id", ""),
            "acl": self.acl,
        }

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
        import ray

        pending: list[tuple[SourceItem, bytes]] = []
        for item in items:  # the sync decision, on the driver
            raw = None
            if item.fingerprint is None:
                raw, failed = self.read(item)
                if failed is not None:
                    self._record(failed, item, by_source, seen, report)
                    continue
            if prev := self._unchanged_file(item, existing, raw):
                seen.add(item.source)
                seen.update(by_source.get(item.source, []))  # an e-mail's attachments share its source
                report.unchanged += 1
                report.files.append(FileResult(item.source, "unchanged", documents=1, chunks=prev.chunks))
                continue
            if raw is None:
                raw, failed = self.read(item)
                if failed is not None:
                    self._record(failed, item, by_source, seen, report)
                    continue
            pending.append((item, raw))
        if not pending:
            return
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                num_cpus=None if self.address else self.num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        unchanged_records = {
            d.doc_id: d.content_hash for d in existing.values() if d.pipeline_hash == self.pipeline_hash
        }
        blob = pickle.dumps((self.settings_all, self._config, unchanged_records, self.stored_options))
        if self.records_given:  # the driver remembers the options (the workers have no store)
            for item, _ in pending:
                if item.is_records:
                    self.store.save_record_options(item.source, options_dict(self.records))
        rows = [{"item": pickle.dumps((item.name, raw, item.fingerprint))} for item, raw in pending]
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * self.actors))
        pool = ray.data.ActorPoolStrategy(size=self.actors)
        ds = ds.map_batches(_ParseChunk, fn_constructor_args=(blob,), batch_size=4, compute=pool)
        ds = ds.map_batches(
            _Embed,
            fn_constructor_args=(pickle.dumps(self.settings_all),),
            batch_size=place(self.settings_all.embedder).batch_size * 4,
            compute=pool,
        )
        chunks_by_source: dict[str, list] = {}
        files: dict[str, dict[str, Any]] = {}
        for row in ds.iter_rows():
            payload = pickle.loads(row["payload"])
            if row["kind"] == "file":
                files[payload["source"]] = payload
            else:
                payload.vector = np.frombuffer(row["vector"], dtype=np.float32).copy()
                chunks_by_source.setdefault(payload.source, []).append(payload)
        batch = _Batch()
        for item, _ in pending:  # in the order given, like the local engine
            result = files[item.source]
            if result["failed"] is not None:
                self._record(result["failed"], item, by_source, seen, report)
                continue
            by_doc: dict[str, list] = {}
            for c in sorted(chunks_by_source.get(item.source, []), key=lambda c: (c.doc_id, c.position)):
                by_doc.setdefault(c.doc_id, []).append(c)
            seen.update(d[0] for d in result["docs"])
            for problem in result["problems"]:
                report.failed.append(FileResult(f"{item.source}#{problem.label}", "failed", reason=problem.reason))
                seen.update([problem.doc_id] if problem.doc_id else by_source.get(item.source, []))
            status = "unchanged"
            for doc_id, content_hash, unchanged, _n in result["docs"]:
                if unchanged:
                    report.unchanged += 1
                    continue
                status = "updated" if doc_id in existing else "added"
                is_update = doc_id in existing
                report.updated += is_update
                report.added += not is_update
                batch.hashes[doc_id] = content_hash
                batch.chunks.extend(by_doc.get(doc_id, []))
                changed.append(doc_id)
                if len(batch.chunks) >= self.settings.batch_chunks:
                    self._flush(batch, report)
            written = sum(len(by_doc.get(d[0], [])) for d in result["docs"] if not d[2])
            report.files.append(FileResult(item.source, status, documents=len(result["docs"]), chunks=written))
        self._flush(batch, report)
