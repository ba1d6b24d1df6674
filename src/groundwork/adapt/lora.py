"""LoRA adapters for a local generator (PEFT; Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models"): teach an answer format or tone, or answering from context with citations.

Records are (instruction, context, answer). Each is rendered with the same grounded-answer prompt
template the ``transformers`` generator uses at answer time (context quoted as ``[n] source`` blocks),
so the adapter learns exactly the task it will be asked to do; the loss is on the answer tokens only.
Training: AdamW, gradient accumulation, a held-out split whose loss is reported per epoch, and the
loss curve saved as PNG. The adapter folder loads with ``generator.adapter_path``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundwork.errors import GroundworkError
from groundwork.llm.prompts import load_prompt


class LoraDataError(GroundworkError):
    """The instruction records could not be read; the message names the file and line."""


@dataclass
class LoraResult:
    out: str
    base: str
    train_records: int
    dev_records: int
    epochs: int
    steps: int
    seconds: float
    train_loss: list[float] = field(default_factory=list)
    dev_loss: list[float] = field(default_factory=list)
    rank: int = 8
    alpha: int = 16

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def read_records(path: Path) -> list[dict[str, str]]:
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(
                {
                    "instruction": str(row["instruction"]),
                    "context": str(row.get("context", "")),
                    "answer": str(row["answer"]),
                }
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LoraDataError(
                f"{path}:{i}: each line must be JSON with 'instruction', 'answer' and optional 'context' ({exc})"
            ) from None
    if len(out) < 2:
        raise LoraDataError(f"{path}: need at least 2 records (one is held out)")
    return out


def records_from_eval(eval_set: Path, kb: Any, top_k: int = 4) -> list[dict[str, str]]:
    """(question, retrieved context, reference answer + citation) for each answerable eval question.

    The answer cites ``[n]`` of the first retrieved chunk from one of the question's relevant sources
    (or [1]), so the adapter learns to answer from the context with citations."""
    from groundwork.answer.context import assemble_context
    from groundwork.answer.llm import format_context
    from groundwork.evaluate.datasets import load_eval_set

    ds = load_eval_set(eval_set)
    out = []
    for q in ds.queries:
        if not q.answerable or not q.answer:
            continue
        hits = kb.search(q.question, top_k=top_k, filter=q.filter)
        context = assemble_context(hits, kb.embedder.count_tokens, 1200)
        n = next((c.n for c in context if q.qrels.get(c.hit.chunk.doc_id, 0) > 0), 1)
        out.append({"instruction": q.question, "context": format_context(context), "answer": f"{q.answer} [{n}]."})
    return out


def _encode(tok: Any, rec: dict[str, str], max_len: int) -> tuple[list[int], list[int]]:
    msgs = load_prompt("grounded-answer").render(context=rec["context"], question=rec["instruction"])
    if getattr(tok, "chat_template", None):
        prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    else:
        prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\n\nassistant:"
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tok(" " + rec["answer"], add_special_tokens=False)["input_ids"] + (
        [tok.eos_token_id] if tok.eos_token_id is not None else []
    )
    ids = (p_ids + a_ids)[-max_len:]
    labels = ([-100] * len(p_ids) + a_ids)[-max_len:]
    return ids, labels


def train_lora(
    records: list[dict[str, str]],
    base: Path,
    out: Path,
    rank: int = 8,
    alpha: int = 16,
    epochs: int = 3,
    lr: float = 2e-4,
    batch_size: int = 4,
    grad_accum: int = 2,
    dev_fraction: float = 0.2,
    max_len: int = 1024,
    device: str = "cpu",
    seed: int = 13,
) -> LoraResult:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    recs = records[:]
    random.Random(seed).shuffle(recs)
    n_dev = max(1, int(len(recs) * dev_fraction))
    dev, train = recs[:n_dev], recs[n_dev:]
    tok = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base)).to(device)
    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)

    def batches(rows: list[dict[str, str]], shuffle: bool) -> list[dict[str, Any]]:
        enc = [_encode(tok, r, max_len) for r in rows]
        order = list(range(len(enc)))
        if shuffle:
            random.shuffle(order)
        out_b = []
        for i in range(0, len(order), batch_size):
            part = [enc[j] for j in order[i : i + batch_size]]
            width = max(len(ids) for ids, _ in part)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in part], device=device)
            labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in part], device=device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in part], device=device)
            out_b.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
        return out_b

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    train_loss, dev_loss, steps = [], [], 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for i, b in enumerate(batches(train, shuffle=True)):
            loss = model(**b).loss / grad_accum
            loss.backward()
            train_loss.append(float(loss) * grad_accum)
            if (i + 1) % grad_accum == 0:
                opt.step()
                opt.zero_grad()
                steps += 1
        opt.step()
        opt.zero_grad()
        model.eval()
        with torch.no_grad():
            losses = [float(model(**b).loss) for b in batches(dev, shuffle=False)]
        dev_loss.append(sum(losses) / max(len(losses), 1))
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    result = LoraResult(
        str(out),
        str(base),
        len(train),
        len(dev),
        epochs,
        steps,
        round(seconds, 1),
        [round(x, 4) for x in train_loss],
        [round(x, 4) for x in dev_loss],
        rank,
        alpha,
    )
    (out / "groundwork_lora.json").write_text(json.dumps(result.to_dict(), indent=2))
    _plot(result, out / "loss.png")
    return result


def _plot(r: LoraResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(r.train_loss) + 1), r.train_loss, label="train (per batch)")
    per_epoch = math.ceil(len(r.train_loss) / max(r.epochs, 1))
    ax.plot([per_epoch * (i + 1) for i in range(len(r.dev_loss))], r.dev_loss, "o-", label="held-out (per epoch)")
    ax.set_xlabel("batch")
    ax.set_ylabel("loss")
    ax.set_title("LoRA training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
