"""`groundwork decide`: prompt-only vs RAG vs fine-tuned vs both, measured on the user's own eval set,
with a recommendation that follows the field's order of work:

1. RAG before anything else: does retrieval beat answering from the prompt alone?
2. Which retrieval configuration (bm25, dense, hybrid, hybrid + reranker) is best?
3. A fine-tuned embedder (``--embedder``): worth its training time only if it adds at least
   ``min_gain`` nDCG@10 over the best base configuration.
4. A LoRA-adapted generator (``--adapter``): worth it only if it adds at least ``min_gain`` answer
   containment, with retrieval (behaviour), and never as a substitute for retrieval (facts).

Every arm reports retrieval metrics (where it retrieves), answer metrics, abstention, latency per query
and a cost estimate: LLM tokens in/out per query times the configured prices, plus training time.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundwork.config import Settings
from groundwork.evaluate.answers import contains_answer, evaluate_answers
from groundwork.evaluate.datasets import EvalDataset
from groundwork.evaluate.index_cache import open_index
from groundwork.evaluate.retrieval import evaluate_retrieval

RETRIEVAL_KEYS = ("ndcg@10", "recall@10", "mrr@10", "hits@10")
ANSWER_KEYS = ("containment", "rougeL", "faithfulness", "abstention_null", "false_abstention")


@dataclass
class Arm:
    name: str
    kind: str  # prompt-only | rag | rag+ft-embedder | lora | rag+lora
    metrics: dict[str, Any] = field(default_factory=dict)


def _prompt_only(dataset: EvalDataset, kb: Any, limit: int) -> dict[str, Any]:
    """Answers without retrieval: the configured LLM alone, or, for the extractive generator (which
    can only quote), an abstention on every question."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    chat = kb.components.chat_model
    rows, null, lat, tok_in, tok_out = [], [], [], [], []
    for q in dataset.queries[:limit] if limit else dataset.queries:
        t0 = time.perf_counter()
        if chat is None:
            text, abstained = "I could not find this in the indexed documents.", True
        else:
            msgs = [
                {
                    "role": "system",
                    "content": "Answer the question concisely. If you do not know, say you cannot find the answer.",
                },
                {"role": "user", "content": q.question},
            ]
            text = chat.complete(msgs)
            abstained = "cannot find" in text.lower() or "could not find" in text.lower()
            tok_in.append(sum(chat.count_tokens(m["content"]) for m in msgs))
            tok_out.append(chat.count_tokens(text))
        lat.append((time.perf_counter() - t0) * 1000)
        if not q.answerable:
            null.append(float(abstained))
            continue
        row = {"false_abstention": float(abstained)}
        if q.answer:
            row["containment"] = contains_answer(q.answer, text, abstained)
            row["rougeL"] = scorer.score(q.answer, text)["rougeL"].fmeasure
        rows.append(row)
    mean = lambda k: statistics.fmean([r[k] for r in rows if k in r]) if any(k in r for r in rows) else None  # noqa: E731
    return {
        "containment": mean("containment"),
        "rougeL": mean("rougeL"),
        "false_abstention": mean("false_abstention"),
        "abstention_null": statistics.fmean(null) if null else None,
        "answer_latency_ms_p50": statistics.median(lat) if lat else None,
        "tokens_in": statistics.fmean(tok_in) if tok_in else 0.0,
        "tokens_out": statistics.fmean(tok_out) if tok_out else 0.0,
    }


def _rag(dataset: EvalDataset, kb: Any, mode: str, limit: int) -> dict[str, Any]:
    r = evaluate_retrieval(dataset, kb, mode)
    a = evaluate_answers(dataset, kb, mode=mode, limit=limit, bertscore=False)
    out = {k: r.get(k) for k in RETRIEVAL_KEYS} | {k: a.get(k) for k in ANSWER_KEYS}
    out["answer_latency_ms_p50"] = a.get("answer_latency_ms_p50")
    out["retrieval_latency_ms_p50"] = r.get("latency_ms_p50")
    chat = kb.components.chat_model
    if chat is not None:  # tokens per query: the assembled prompt in, the answer out (estimated on a sample)
        sample = [q for q in dataset.queries if q.answerable][:20]
        ins, outs = [], []
        for q in sample:
            ans = kb.ask(q.question, mode=mode)
            ins.append(sum(chat.count_tokens(c.text) for c in ans.citations) + chat.count_tokens(q.question) + 300)
            outs.append(chat.count_tokens(ans.answer))
        out["tokens_in"], out["tokens_out"] = statistics.fmean(ins or [0]), statistics.fmean(outs or [0])
    else:
        out["tokens_in"] = out["tokens_out"] = 0.0
    return out


def _training_minutes(folder: Path | None, name: str, key: str) -> float | None:
    if folder is None or not (folder / name).is_file():
        return None
    return round(float(json.loads((folder / name).read_text()).get(key, 0.0)) / 60, 1)


def run_decision(
    dataset: EvalDataset,
    settings: Settings,
    cache: Path | None = None,
    embedder: Path | None = None,
    adapter: Path | None = None,
    limit: int = 0,
    price_in: float = 0.0,
    price_out: float = 0.0,
    min_gain: float = 0.02,
) -> dict[str, Any]:
    """Run every arm and return {arms, recommendation, ...} (see the module docstring)."""
    arms: list[Arm] = []
    base_kb = open_index(dataset, settings, cache)
    arms.append(Arm("prompt-only", "prompt-only", _prompt_only(dataset, base_kb, limit)))
    for mode in ("bm25", "dense", "hybrid"):
        arms.append(Arm(f"rag-{mode}", "rag", _rag(dataset, base_kb, mode, limit)))
    rerank = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"method": "mmr"})})
    arms.append(Arm("rag-hybrid+mmr", "rag", _rag(dataset, open_index(dataset, rerank, cache), "hybrid", limit)))
    ft_minutes = _training_minutes(embedder, "groundwork_adapt.json", "train_seconds")
    if embedder is not None:
        ft = settings.model_copy(update={"embedder": settings.embedder.model_copy(update={"model": str(embedder)})})
        ft_kb = open_index(dataset, ft, cache)
        for mode in ("dense", "hybrid"):
            arms.append(Arm(f"rag-{mode}+ft-embedder", "rag+ft-embedder", _rag(dataset, ft_kb, mode, limit)))
    lora_minutes = _training_minutes(adapter, "groundwork_lora.json", "seconds")
    if adapter is not None:
        lo = settings.model_copy(
            update={
                "generator": settings.generator.model_copy(update={"backend": "transformers", "adapter_path": adapter})
            }
        )
        lora_kb = open_index(dataset, lo, cache)
        arms.append(Arm("lora (no retrieval)", "lora", _prompt_only(dataset, lora_kb, limit)))
        arms.append(Arm("rag-hybrid+lora", "rag+lora", _rag(dataset, lora_kb, "hybrid", limit)))
    for a in arms:
        m = a.metrics
        m["cost_per_1k_queries_usd"] = round(
            (m.get("tokens_in", 0) * price_in + m.get("tokens_out", 0) * price_out) / 1e6 * 1000, 4
        )
    rec = recommend(arms, min_gain, ft_minutes, lora_minutes)
    return {
        "dataset": dataset.name,
        "queries": len(dataset.queries[:limit] if limit else dataset.queries),
        "generator": base_kb.generator.model_id,
        "price_in_per_1m": price_in,
        "price_out_per_1m": price_out,
        "min_gain": min_gain,
        "training_minutes": {"embedder": ft_minutes, "lora": lora_minutes},
        "arms": {a.name: {"kind": a.kind, **a.metrics} for a in arms},
        "recommendation": rec,
    }


def _v(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) else 0.0


def recommend(arms: list[Arm], min_gain: float, ft_minutes: float | None, lora_minutes: float | None) -> dict[str, Any]:
    by = {a.name: a for a in arms}
    steps: list[str] = []
    prompt = by["prompt-only"].metrics
    rag = [a for a in arms if a.kind == "rag"]
    best_rag = max(rag, key=lambda a: (_v(a.metrics.get("containment")), _v(a.metrics.get("ndcg@10"))))
    gain = _v(best_rag.metrics.get("containment")) - _v(prompt.get("containment"))
    use_rag = gain > 0 or _v(prompt.get("containment")) == 0
    steps.append(
        f"1. RAG: {best_rag.name} beats prompt-only by {gain:+.2f} containment "
        f"({_v(best_rag.metrics.get('containment')):.2f} vs {_v(prompt.get('containment')):.2f}): "
        + (
            "use retrieval."
            if use_rag
            else "retrieval does not help this eval set; check the corpus covers the questions."
        )
    )
    top = max(_v(a.metrics.get("ndcg@10")) for a in rag)
    # within min_gain of the best, the fastest configuration wins: a difference that small is noise
    near = [a for a in rag if top - _v(a.metrics.get("ndcg@10")) < min_gain]
    best_ret = min(near, key=lambda a: _v(a.metrics.get("answer_latency_ms_p50")))
    steps.append(
        f"2. Retrieval: best nDCG@10 {top:.3f}; {best_ret.name} ({_v(best_ret.metrics.get('ndcg@10')):.3f}) is the fastest "
        f"configuration within {min_gain:.2f} of it ({', '.join(a.name for a in near)})."
    )
    choice = best_ret.name
    ft = [a for a in arms if a.kind == "rag+ft-embedder"]
    if ft:
        best_ft = max(ft, key=lambda a: _v(a.metrics.get("ndcg@10")))
        d = _v(best_ft.metrics.get("ndcg@10")) - _v(best_ret.metrics.get("ndcg@10"))
        worth = d >= min_gain
        steps.append(
            f"3. Fine-tuned embedder: {best_ft.name} {'adds' if d >= 0 else 'loses'} {d:+.3f} nDCG@10"
            f"{f' for {ft_minutes} min of training' if ft_minutes is not None else ''}: "
            + ("worth it." if worth else f"not worth it (below the {min_gain:+.2f} bar).")
        )
        if worth:
            choice = best_ft.name
    else:
        steps.append(
            "3. Fine-tuned embedder: none given (--embedder); train one with `groundwork adapt embeddings` only if step 2's "
            "retrieval figures are the weak point."
        )
    if "rag-hybrid+lora" in by:
        d = _v(by["rag-hybrid+lora"].metrics.get("containment")) - _v(by["rag-hybrid"].metrics.get("containment"))
        alone = _v(by["lora (no retrieval)"].metrics.get("containment"))
        worth = d >= min_gain
        steps.append(
            f"4. LoRA generator: with retrieval {d:+.2f} containment over the base generator"
            f"{f' for {lora_minutes} min of training' if lora_minutes is not None else ''}; without retrieval it "
            f"reaches {alone:.2f}: "
            + (
                "worth it for behaviour (format, tone), keep retrieval for the facts."
                if worth
                else "not worth it; keep the base generator."
            )
        )
        if worth:
            choice += " + LoRA generator"
    else:
        steps.append(
            "4. LoRA generator: none given (--adapter); fine-tune the generator for behaviour (format, tone), never for facts."
        )
    return {"choice": choice if use_rag else "prompt-only", "steps": steps}
