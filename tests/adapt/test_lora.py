"""`groundwork adapt lora` end to end on a tiny randomly initialised model: train, save, reload, generate."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from groundwork.cli import app
from groundwork.config import GeneratorSettings
from tests.conftest import write
from tests.tiny_models import build_tiny_causal_lm


def test_lora_trains_saves_reloads_and_generates(tmp_path: Path) -> None:
    base = build_tiny_causal_lm(tmp_path / "tiny")
    rows = [
        {
            "instruction": "where do visitors park ?",
            "context": "[1] parking.md\nvisitors park in the north car park .",
            "answer": "north car park [1] .",
        }
        for _ in range(12)
    ]
    data = write(tmp_path / "records.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "adapter"
    r = CliRunner().invoke(
        app,
        [
            "adapt",
            "lora",
            "--base",
            str(base),
            "--data",
            str(data),
            "--epochs",
            "4",
            "--rank",
            "4",
            "--alpha",
            "8",
            "--batch-size",
            "2",
            "--grad-accum",
            "2",
            "--lr",
            "5e-3",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (out / "adapter_config.json").is_file() and (out / "loss.png").stat().st_size > 1000
    summary = json.loads((out / "groundwork_lora.json").read_text())
    assert summary["dev_records"] >= 1 and summary["steps"] >= 4 and len(summary["dev_loss"]) == 4
    assert summary["dev_loss"][-1] < summary["dev_loss"][0]  # it learned the held-out answer format
    from groundwork.llm.backends.local import TransformersChat

    chat = TransformersChat(GeneratorSettings(backend="transformers", model_path=base, adapter_path=out, max_tokens=6))
    assert chat.model_id == "transformers:tiny+adapter"
    msgs = [{"role": "system", "content": "answer"}, {"role": "user", "content": "where do visitors park ?"}]
    assert chat.complete(msgs).strip()
    plain = TransformersChat(GeneratorSettings(backend="transformers", model_path=base, max_tokens=6))
    import torch

    ids = plain.tokenizer("visitors park", return_tensors="pt")["input_ids"]
    with torch.no_grad():  # the adapter changes the model's outputs
        assert not torch.allclose(plain.model(ids).logits, chat.model(ids).logits)


def test_lora_rejects_bad_records(tmp_path: Path) -> None:
    base = tmp_path / "nomodel"
    base.mkdir()
    data = write(tmp_path / "bad.jsonl", '{"question": "x"}\n')
    r = CliRunner().invoke(app, ["adapt", "lora", "--base", str(base), "--data", str(data)])
    assert r.exit_code == 2 and "bad.jsonl:1" in r.output and "instruction" in r.output
