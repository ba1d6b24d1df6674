"""Training pairs for embedding fine-tuning: (query, positive passage[, hard negative]).

Sources: a pairs JSONL file (``{"query": ..., "positive": ...[, "negative": ...]}`` per line), BEIR
judgments (query text, judged-relevant document's title + text), or pairs synthesised from a corpus
(a section's heading, or a document's title, as the query for its text - see ``synthesize_pairs``).
Hard negatives are mined with BM25 (``rank_bm25``'s Okapi BM25, Robertson & Zaragoza 2009,
k1 = 1.5, b = 0.75): the best-ranked document that is not judged relevant.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from groundwork.errors import GroundworkError


class PairsError(GroundworkError):
    """The pairs file or BEIR folder could not be read; the message names the file and line."""


@dataclass
class Pair:
    query: str
    positive: str
    negative: str | None = None
    query_id: str = ""
    positive_id: str = ""


@dataclass
class PairSet:
    """Pairs plus, for evaluation, the corpus (doc id -> text) and judgments (query id -> doc ids)."""

    pairs: list[Pair]
    corpus: dict[str, str] = field(default_factory=dict)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    queries: dict[str, str] = field(default_factory=dict)
    source: str = ""


def read_pairs(path: Path) -> PairSet:
    pairs = []
    ids: dict[str, str] = {}  # passage text -> id: the same passage twice is one corpus entry
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pid = ids.setdefault(str(row["positive"]), f"p{len(ids) + 1}")
            pairs.append(
                Pair(str(row["query"]), str(row["positive"]), row.get("negative"), query_id=f"q{i}", positive_id=pid)
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PairsError(f"{path}:{i}: each line must be JSON with 'query' and 'positive' ({exc})") from None
    if not pairs:
        raise PairsError(f"{path}: no pairs")
    corpus = {p.positive_id: p.positive for p in pairs}
    return PairSet(
        pairs, corpus, {p.query_id: {p.positive_id: 1} for p in pairs}, {p.query_id: p.query for p in pairs}, str(path)
    )


def read_beir(folder: Path, qrels_path: Path) -> PairSet:
    """Pairs from a BEIR folder (corpus.jsonl, queries.jsonl) and a qrels TSV (header, maybe CRLF)."""
    corpus: dict[str, str] = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            corpus[str(d["_id"])] = f"{d.get('title', '')}\n{d.get('text', '')}".strip()
    queries = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            queries[str(q["_id"])] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines()):
        parts = line.strip().split("\t")
        if i == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(parts) >= 3 and int(parts[-1]) > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[-1])
    pairs = [
        Pair(queries[q], corpus[d], query_id=q, positive_id=d)
        for q, docs in qrels.items()
        if q in queries
        for d in docs
        if d in corpus
    ]
    if not pairs:
        raise PairsError(f"{qrels_path}: no judged query matches {folder}/queries.jsonl and corpus.jsonl")
    return PairSet(pairs, corpus, qrels, {q: queries[q] for q in qrels if q in queries}, str(qrels_path))


def load_documents(folder: Path) -> list:
    """Every loadable document under ``folder`` (unsupported and unreadable files are skipped)."""
    from groundwork.errors import LoaderError
    from groundwork.ingest.loaders import load_file, read_file
    from groundwork.ingest.sync import discover

    files, _, _ = discover([folder])
    docs = []
    for f in files:
        try:
            docs += load_file(f, read_file(f, 50 * 1024 * 1024))
        except LoaderError:
            continue
    return docs


def synthesize_pairs(documents: list, min_words: int = 2) -> PairSet:  # list[Document]
    """(heading or title, section text) pairs from loaded documents.

    Limits: headings are short, keyword-like queries, unlike users' questions; documents without
    headings or titles give no pairs; the model learns the corpus's vocabulary, not its users'.
    """
    pairs, corpus = [], {}
    for doc in documents:
        for j, sec in enumerate(doc.sections):
            query = (sec.heading_path[-1] if sec.heading_path else doc.title).strip()
            # the heading is the query: it must not also be the start of the passage
            text = "\n".join(ln for ln in sec.text.splitlines() if not ln.lstrip().startswith("#")).strip()
            if len(query.split()) >= min_words and len(text.split()) >= 20:
                pid = f"{doc.doc_id}#{j}"
                corpus[pid] = text
                pairs.append(Pair(query, text, query_id=pid + "?", positive_id=pid))
    if not pairs:
        raise PairsError("no (heading, section) pairs could be built: the documents need headings or titles")
    return PairSet(
        pairs,
        corpus,
        {p.query_id: {p.positive_id: 1} for p in pairs},
        {p.query_id: p.query for p in pairs},
        "synthesized",
    )


def split_by_query(ps: PairSet, dev_fraction: float, seed: int = 13) -> tuple[list[Pair], list[str]]:
    """(training pairs, dev query ids): queries, not pairs, are split, so no dev query is trained on."""
    qids = sorted({p.query_id for p in ps.pairs})
    random.Random(seed).shuffle(qids)
    n_dev = max(1, int(len(qids) * dev_fraction)) if dev_fraction > 0 else 0
    dev = set(qids[:n_dev])
    return [p for p in ps.pairs if p.query_id not in dev], sorted(dev)


_TOKEN = re.compile(r"\w+")


def mine_bm25_negatives(pairs: list[Pair], ps: PairSet) -> int:
    """Set ``negative`` on each pair to the best BM25 document not judged relevant. Returns how many."""
    found = 0
    for p, negs in zip(pairs, bm25_negatives(pairs, ps, 1)):
        if not p.negative and negs:
            p.negative = negs[0]
            found += 1
    return found


def bm25_negatives(pairs: list[Pair], ps: PairSet, n: int) -> list[list[str]]:
    """Per pair, the ``n`` best BM25 documents (of the top 20) that are not judged relevant to its
    query and are not its positive passage (texts, best first)."""
    out = []
    for p, top in zip(pairs, bm25_top(ps, [p.query for p in pairs], 20)):
        relevant = ps.qrels.get(p.query_id, {})
        negs = [ps.corpus[d] for d in top if d not in relevant and ps.corpus[d] != p.positive]
        out.append(negs[:n])
    return out


def bm25_top(ps: PairSet, queries: list[str], depth: int) -> list[list[str]]:
    """Per query, the ids of the ``depth`` best BM25 documents of ``ps.corpus``, best first."""
    from rank_bm25 import BM25Okapi

    ids = list(ps.corpus)
    bm25 = BM25Okapi([_TOKEN.findall(ps.corpus[i].lower()) for i in ids])
    return [[ids[i] for i in bm25.get_scores(_TOKEN.findall(q.lower())).argsort()[::-1][:depth]] for q in queries]


def write_dev_qrels(out: Path, ps: PairSet, dev: list[str]) -> None:
    """``out/dev-qrels.tsv``: the held-out queries' judgments (BEIR layout), so the whole pipeline can be
    measured on exactly the queries a model was not trained on."""
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q in dev for d, s in ps.qrels.get(q, {}).items()]
    (out / "dev-qrels.tsv").write_text("\n".join(rows) + "\n")


def cpu_training_args(out: Path, epochs: int, batch_size: int, lr: float, seed: int, logging_steps: int) -> dict:
    """Keyword arguments shared by the sentence-transformers trainers here: CPU, no checkpoints, no
    reporting, linear decay after 10% warm-up, seeded."""
    return {
        "output_dir": str(out / ".checkpoints"),
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch_size,
        "learning_rate": lr,
        "warmup_steps": 0.1,
        "save_strategy": "no",
        "logging_steps": logging_steps,
        "report_to": [],
        "use_cpu": True,
        "seed": seed,
        "disable_tqdm": True,
    }
