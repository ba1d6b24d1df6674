"""Evaluation datasets: what to index (a corpus and how to read it) and what to ask (queries with
judgments). Three layouts:

- BEIR (Thakur et al. 2021): ``corpus.jsonl`` ({_id, title, text}), ``queries.jsonl`` ({_id, text}),
  ``qrels/*.tsv`` (query-id, corpus-id, score; a header line; CRLF line ends are accepted).
- MultiHop-RAG (Tang & Yang 2024): a corpus JSON array keyed by ``url`` with the text in ``body``, and a
  queries JSON array of {query, answer, question_type, evidence_list: [{url, fact, ...}]}.
- Groundwork eval sets (JSONL), one question per line::

      {"id": "q1", "question": "...", "answer": "reference answer", "sources": ["docs/concepts.md"],
       "filter": "category = 'x'", "type": "how-to"}

  ``sources`` are document ids or file paths relative to the corpus folder; an empty list with an
  ``answer`` of "" marks an unanswerable question. The first line may name the corpus folder,
  relative to the eval set: {"corpus": "../docs"}.

  A first line {"live": true} instead marks questions about the live knowledge base (``--kb``), such as
  those of resolved reviews (``groundwork reviews export``): nothing is indexed, ``sources`` are the
  knowledge base's document ids, and a question may carry the asker's ``"tenant"`` and ``"groups"``:
  it is then searched with that access, as the asker would.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from groundwork.errors import GroundworkError
from groundwork.ingest.records import RecordOptions
from groundwork.types import Access


class DatasetError(GroundworkError):
    """An evaluation file is missing or malformed; the message names the file and line."""


@dataclass
class EvalQuery:
    """One question. ``qrels`` maps relevant doc ids to grades; ``facts`` are gold evidence spans."""

    qid: str
    question: str
    answer: str = ""
    qrels: dict[str, int] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)
    qtype: str = ""
    filter: str | None = None
    access: Access | None = None  # live eval sets: the asker's tenant and groups; None: every document

    @property
    def answerable(self) -> bool:
        return bool(self.qrels or self.facts or self.answer)


@dataclass
class EvalDataset:
    """A corpus to index (``corpus`` files read with ``records``) and the queries to run on it."""

    name: str
    corpus: list[Path]
    records: RecordOptions | None
    queries: list[EvalQuery]
    fmt: str

    def fingerprint(self) -> str:
        """sha256 over the corpus files' bytes and how they are read: the index cache key's data part."""
        h = hashlib.sha256()
        for p in sorted(self.corpus):
            files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
            for f in files:
                h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
                h.update(f.read_bytes())
        h.update(repr(self.records).encode())
        if self.records and self.records.title_field:
            h.update(f"title_field={self.records.title_field}".encode())
        return h.hexdigest()[:16]


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    for i, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}: line {i} is not valid JSON ({exc.msg})") from None
    return rows


def _read_json(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON array")
    return data


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query-id -> {corpus-id: score} from a BEIR TSV (header line skipped, CRLF tolerated)."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    for i, row in enumerate(rows, 1):
        row = [c.strip() for c in row]
        if not row or not any(row) or (i == 1 and not row[-1].lstrip("-").isdigit()):
            continue  # blank line, or the header
        if len(row) < 3:
            raise DatasetError(f"{path}: line {i} needs query-id, corpus-id, score separated by tabs")
        qrels.setdefault(row[0], {})[row[1]] = int(row[-1])
    return qrels


def load_beir(corpus: Path, queries: Path, qrels: Path) -> EvalDataset:
    """A BEIR dataset; only queries with judgments are kept."""
    judged = read_qrels(qrels)
    qs = []
    for row in _read_jsonl(queries):
        qid = str(row.get("_id"))
        if qid in judged:
            qs.append(EvalQuery(qid=qid, question=row["text"], qrels=judged[qid]))
    if not qs:
        raise DatasetError(f"{qrels}: no judged query ids match {queries}")
    return EvalDataset(corpus.parent.name, [corpus], RecordOptions("text", "_id", ("title",)), qs, "beir")


def load_multihop(corpus: Path, queries: Path) -> EvalDataset:
    """MultiHop-RAG: every query, null queries included (retrieval metrics leave them out)."""
    qs = []
    for i, row in enumerate(_read_json(queries)):
        evidence = row.get("evidence_list") or []
        qtype = row.get("question_type", "")
        null = qtype == "null_query"
        qs.append(
            EvalQuery(
                qid=str(i),
                question=row["query"],
                answer="" if null else row.get("answer", ""),
                qrels={e["url"]: 1 for e in evidence},
                facts=[e["fact"] for e in evidence],
                qtype=qtype,
            )
        )
    options = RecordOptions("body", "url", ("title", "source", "category", "published_at"))
    return EvalDataset("multihop-rag", [corpus], options, qs, "multihop-rag")


LIVE = "live"  # the format of an eval set about the live knowledge base (no corpus to index)


def live_dataset(name: str, rows: list[dict]) -> EvalDataset:
    """Questions about the live knowledge base: ``rows`` as in a Groundwork eval set, with sources
    as document ids and optional ``tenant``/``groups`` (the access each question is asked with)."""
    qs = []
    for i, row in enumerate(rows, 1):
        if "question" not in row:
            raise DatasetError(f"{name}: question {i} has no 'question' field")
        groups = row.get("groups")
        access = None if "tenant" not in row and groups is None else Access(row.get("tenant"), tuple(groups or ()))
        qs.append(
            EvalQuery(
                qid=str(row.get("id", i)),
                question=row["question"],
                answer=row.get("answer", ""),
                qrels={str(s): 1 for s in row.get("sources", [])},
                qtype=row.get("type", ""),
                filter=row.get("filter"),
                access=access,
            )
        )
    return EvalDataset(name, [], None, qs, LIVE)


def load_eval_set(path: Path, corpus: Path | None = None) -> EvalDataset:
    """A Groundwork eval set. ``corpus`` defaults to the ``corpus`` key of the file's first line
    (a path relative to the eval set), e.g. {"corpus": "../docs"}; a first line {"live": true} makes
    it a ``live_dataset`` (no corpus)."""
    rows = _read_jsonl(path)
    if rows and rows[0].get("live") is True and "question" not in rows[0]:
        return live_dataset(path.stem, rows[1:])
    if rows and "corpus" in rows[0] and "question" not in rows[0]:
        corpus = corpus or (path.parent / rows[0]["corpus"]).resolve()
        rows = rows[1:]
    if corpus is None:
        raise DatasetError(f'{path}: no corpus given; pass --corpus or start the file with {{"corpus": "DIR"}}')
    qs = []
    for i, row in enumerate(rows, 1):
        if "question" not in row:
            raise DatasetError(f"{path}: question {i} has no 'question' field")
        sources = {}
        for s in row.get("sources", []):
            p = Path(corpus) / s
            sources[str(p.resolve()) if p.exists() else s] = 1
        qs.append(
            EvalQuery(
                qid=str(row.get("id", i)),
                question=row["question"],
                answer=row.get("answer", ""),
                qrels=sources,
                qtype=row.get("type", ""),
                filter=row.get("filter"),
            )
        )
    return EvalDataset(path.stem, [Path(corpus)], None, qs, "groundwork")
