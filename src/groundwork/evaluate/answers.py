"""Answer evaluation: run ``ask`` on every query and score the answers.

Metrics (answerable queries unless said otherwise):
- rouge1 / rouge2 / rougeL: mean F1 against the reference answer (rouge-score, Porter stemming;
  Lin 2004).
- bleu: corpus BLEU, 0-100 (sacrebleu; Papineni et al. 2002, Post 2018).
- bertscore_f1: mean BERTScore F1 (Zhang et al. 2020) computed with the bundled all-MiniLM-L6-v2,
  ``num_layers=6``. The default BERTScore model is roberta-large; figures with MiniLM are not
  comparable with published BERTScore numbers, only with each other.
- containment: the reference answer occurs in the answer, case-insensitive, as whole words (MultiHop-RAG's
  accuracy; whole words so that a reference "No" is not found inside "not"); an abstention contains nothing.
- abstention_null: share of unanswerable (null) queries abstained on; false_abstention: share of
  answerable queries abstained on.
- citation_precision: cited chunks whose document is among the query's relevant documents, over all
  citations (micro average).
- faithfulness: share of answer sentences supported by the chunk they cite: the sentence's words occur
  in that chunk in order (punctuation and markup ignored), or its embedding has cosine >= 0.8 with a
  sentence of that chunk; a quoted table row ("Header: cell; ...") when each header and cell occurs in it.
An LLM-as-judge metric needs an LLM generator; none is configured in this version, so it is reported
as skipped rather than guessed.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from typing import Any

import numpy as np

from groundwork.evaluate.datasets import EvalDataset, EvalQuery
from groundwork.evaluate.judge import JudgeResult, LLMJudge, summarise
from groundwork.evaluate.retrieval import WARM_UP, new_questions
from groundwork.kb import KnowledgeBase
from groundwork.text import split_sentences
from groundwork.types import Answer

BERTSCORE_NOTE = (
    "BERTScore with all-MiniLM-L6-v2 (num_layers=6), not the default roberta-large: compare only with itself"
)
_SEGMENT = re.compile(r"(.+?)\s*((?:\[\d+\]\s*)+)")
_WORDS = re.compile(r"[^a-z0-9]+")


def _squash(text: str) -> str:
    return _WORDS.sub("", text.lower())


def segments(answer: str) -> list[tuple[str, list[int]]]:
    """(sentence, cited numbers) pairs; text after the last marker forms an uncited segment."""
    out, end = [], 0
    for m in _SEGMENT.finditer(answer):
        out.append((m.group(1).strip(), [int(n) for n in re.findall(r"\d+", m.group(2))]))
        end = m.end()
    if answer[end:].strip():
        out.append((answer[end:].strip(), []))
    return out


def faithfulness(answer: Answer, kb: KnowledgeBase, threshold: float = 0.8) -> float:
    """Share of the answer's sentences supported by the chunks they cite (see module docstring)."""
    cited = {c.n: c.text for c in answer.citations}
    segs = segments(answer.answer)
    if not segs:
        return 0.0
    supported = 0
    for sentence, ns in segs:
        texts = [cited[n] for n in ns if n in cited]
        if not texts:
            continue
        if any(_squash(sentence) in _squash(t) for t in texts) or _row_in(sentence, texts):
            supported += 1
            continue
        candidates = [s for t in texts for s in split_sentences(t)]
        if candidates:
            vecs = kb.embedder.embed([sentence, *candidates])
            if float(np.max(vecs[1:] @ vecs[0])) >= threshold:
                supported += 1
    return supported / len(segs)


def _row_in(unit: str, texts: list[str]) -> bool:
    """A quoted table row ("Header: cell; Header: cell"): every header and cell occurs in one cited text."""
    pairs = [p.split(": ", 1) for p in unit.split("; ")]
    if len(pairs) < 2 or any(len(p) != 2 for p in pairs):
        return False
    return any(all(_squash(x) in _squash(t) for p in pairs for x in p) for t in texts)


def contains_answer(reference: str, answer: str, abstained: bool = False) -> float:
    """1.0 when ``reference`` occurs in ``answer`` as whole words (case-insensitive), else 0.0;
    always 0.0 for an abstention."""
    ref = " ".join(reference.lower().split())
    if abstained or not ref:
        return 0.0
    return float(re.search(rf"(?<!\w){re.escape(ref)}(?!\w)", " ".join(answer.lower().split())) is not None)


def _bertscore(hyps: list[str], refs: list[str], kb: KnowledgeBase) -> float | None:
    if not hyps:
        return None
    from bert_score import score

    _, _, f1 = score(hyps, refs, model_type=str(kb.embedder.path), num_layers=6, batch_size=32, verbose=False)
    return float(f1.mean())


def evaluate_answers(
    dataset: EvalDataset, kb: KnowledgeBase, mode: str | None = None, limit: int = 0, bertscore: bool = True
) -> dict[str, Any]:
    """Answer metrics over ``dataset`` (the first ``limit`` queries when limit > 0).

    Each question is asked as a new question (``retrieval.new_questions``): its vector, and those of
    the context sentences no earlier question of the run needed, are computed inside the timed
    ``ask`` (``answer_latency_ms_p50``, ms)."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU

    queries: list[EvalQuery] = dataset.queries[:limit] if limit else dataset.queries
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rows: list[dict[str, float]] = []
    by_type: dict[str, list[dict[str, float]]] = defaultdict(list)
    hyps, refs = [], []
    null_abstained, cited_total, cited_relevant, latencies = [], 0, 0, []
    judge = LLMJudge(kb.components.chat_model) if kb.components.chat_model is not None else None
    judged: list[JudgeResult] = []
    reasons: list[dict[str, Any]] = []
    kb.search(WARM_UP, mode=mode)  # the model, tables and the parts the copy below shares
    with new_questions(kb) as fresh:
        fresh.search(WARM_UP, mode=mode)
        answers = [fresh.ask(q.question, mode=mode, filter=q.filter, access=q.access) for q in queries]
    for q, ans in zip(queries, answers):
        if judge is not None and q.answerable:
            jr = judge.judge(q.question, q.answer, ans.answer)
            judged.append(jr)
            if jr.judgement is not None and len(reasons) < 20:
                reasons.append({"question": q.question, **jr.judgement.model_dump()})
        latencies.append(ans.timings_ms["total"])
        if not q.answerable:
            null_abstained.append(float(ans.abstained))
            continue
        row = {"false_abstention": float(ans.abstained)}
        if q.answer:
            r = scorer.score(q.answer, ans.answer)
            row.update({k: r[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")})
            row["containment"] = contains_answer(q.answer, ans.answer, ans.abstained)
            hyps.append(ans.answer)
            refs.append(q.answer)
        if not ans.abstained:
            row["faithfulness"] = faithfulness(ans, kb)
            if q.qrels:
                cited_total += len(ans.citations)
                cited_relevant += sum(1 for c in ans.citations if q.qrels.get(c.doc_id, 0) > 0)
        rows.append(row)
        by_type[q.qtype].append(row)

    def mean(key: str, rs: list[dict[str, float]]) -> float | None:
        vals = [r[key] for r in rs if key in r]
        return statistics.fmean(vals) if vals else None

    keys = ["containment", "rouge1", "rouge2", "rougeL", "faithfulness", "false_abstention"]
    out: dict[str, Any] = {k: mean(k, rows) for k in keys}
    out["bleu"] = BLEU(effective_order=True).corpus_score(hyps, [refs]).score if hyps else None
    out["bertscore_f1"] = _bertscore(hyps, refs, kb) if bertscore else None
    out["bertscore_note"] = BERTSCORE_NOTE
    out["abstention_null"] = statistics.fmean(null_abstained) if null_abstained else None
    out["citation_precision"] = cited_relevant / cited_total if cited_total else None
    out["answer_latency_ms_p50"] = statistics.median(latencies) if latencies else None
    if judge is not None:
        out.update(summarise(judged))
        out["llm_judge"] = f"by {kb.components.chat_model.model_id} ({len(judged)} answers)"
        out["judge_examples"] = reasons
    else:
        out["llm_judge"] = "skipped: no LLM generator is configured (the extractive generator needs none)"
    out["answer_queries"] = {"answerable": len(rows), "unanswerable": len(null_abstained)}
    if len(by_type) > 1:
        per = {t: {k: mean(k, r) for k in keys} | {"queries": len(r)} for t, r in sorted(by_type.items())}
        out["answer_per_type"] = per
    return out
