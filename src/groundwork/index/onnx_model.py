"""ONNX Runtime backends of the embedder (``embedder.backend = "onnx" | "onnx-int8"``).

The model is exported once from the configured sentence-transformers folder (the bundled MiniLM by
default) into a cache folder (``embedder.onnx_dir``, default ``~/.cache/groundwork/models``), never
into the model's own folder, which may be a read-only site-packages directory. Export and
quantisation run under a file lock (``filelock``, flock(2)) and write through a temporary file and
``os.replace``, so two processes starting at once export once and never read a half-written file.

- fp32: ``torch.onnx.export`` (TorchScript exporter) of the Hugging Face encoder with eager attention;
  for BERT-type encoders (MiniLM is one) ONNX Runtime's transformer optimizer
  (``onnxruntime.transformers.optimizer.optimize_model``, model type 'bert') then fuses each layer's
  attention into one ``Attention`` operator, the embeddings' sum and LayerNorm into
  ``EmbedLayerNormalization``, Add + LayerNorm into ``SkipLayerNormalization`` and bias + GELU into
  ``BiasGelu`` (ONNX Runtime documentation, "Transformer Model Optimization Tool"). The fused graph is
  checked against the unfused one on a padded probe batch before it is kept (max abs difference of the
  unpadded hidden states < ``FUSE_TOLERANCE``). ONNX Runtime runs the same function in fp32 (max abs
  difference to torch ~1e-6 on MiniLM), so it keeps the model id; fusion makes it ~1.2x faster.
- int8: ONNX Runtime dynamic quantisation of the fused graph (its ``Attention`` becomes ``QAttention``:
  ~1.3x faster than quantising the unfused graph on AVX-512 VNNI, docs/benchmarks.md) (``onnxruntime.quantization.quantize_dynamic``; weights int8
  per channel, activations quantised at run time) with the settings of sentence-transformers'
  ``export_dynamic_quantized_onnx_model`` / Optimum's ``AutoQuantizationConfig`` for the CPU's
  instruction set (avx2: unsigned weights; avx512_vnni and arm64: signed weights; symmetric weights,
  asymmetric activations, full 8-bit range). The vectors change, so int8 is another model id.

sentence-transformers' own ONNX backend (``SentenceTransformer(..., backend="onnx")``) needs
``optimum-onnx``, which requires transformers < 4.58; this project runs transformers 5, so the export
and quantisation call the same underlying libraries (torch.onnx, ONNX Runtime) directly.

Pooling follows the model's ``1_Pooling/config.json`` (mean pooling only; Sentence-BERT, Reimers &
Gurevych 2019), then L2 normalisation, as sentence-transformers computes it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from groundwork.errors import ConfigError

QUANT_FLAVOURS = ("avx2", "avx512_vnni", "arm64")
EXPORT_LOCK_TIMEOUT_S = 900  # an export of a MiniLM-sized model takes seconds; a stuck one must not hang forever
FUSED_MODEL_TYPES = ("bert",)  # config.json model_type values the optimizer's 'bert' fusions are written for
FUSE_TOLERANCE = 1e-4  # largest abs difference of a hidden state, fused vs unfused fp32, before fusion is refused


def cpu_flavour() -> str:
    """The int8 configuration for this CPU: 'arm64' on ARM, 'avx512_vnni' when /proc/cpuinfo lists that
    flag, else 'avx2' (the configuration the Optimum documentation gives for AVX2 and older x86)."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        flags = ""
    return "avx512_vnni" if re.search(r"\bavx512_vnni\b", flags) else "avx2"


def check_mean_pooling(model_dir: Path) -> None:
    """Raise ConfigError unless ``model_dir`` is Transformer + mean Pooling (+ Normalize): the only
    module stack the ONNX backends reproduce."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"embedder.backend: ONNX needs a sentence-transformers folder with modules.json and "
            f"1_Pooling/config.json ({e}); use embedder.backend = 'torch'"
        ) from e
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"}:
        raise ConfigError(f"embedder.backend: ONNX supports Transformer + Pooling (+ Normalize) models, not {kinds}")
    if not pooling.get("pooling_mode_mean_tokens") or any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
    ):
        raise ConfigError("embedder.backend: ONNX supports mean pooling only; use embedder.backend = 'torch'")


def _atomic_target(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def _export_fp32(model_dir: Path, target: Path) -> None:
    """torch.onnx.export of the encoder: inputs (batch, tokens) int64, output last_hidden_state."""
    import torch
    from transformers import AutoModel

    # Eager attention: the optimizer's Attention fusion matches the eager pattern, not SDPA's.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    takes_types = getattr(model.config, "type_vocab_size", 0) > 0
    names = names if takes_types else names[:2]

    class Encoder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, args))).last_hidden_state

    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    tmp = _atomic_target(target)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(
            Encoder(model),
            dummy,
            str(tmp),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, target)


def fusion_shape(model_dir: Path) -> tuple[int, int] | None:
    """(attention heads, hidden size) when ``model_dir``'s encoder is one the optimizer fuses, else None."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
        if cfg.get("model_type") in FUSED_MODEL_TYPES:
            return int(cfg["num_attention_heads"]), int(cfg["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


@contextmanager
def _quiet_root_logger():
    """ONNX Runtime's tools log advice ("consider pre-processing", fusion counts) on the root logger."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _fuse(raw: Path, target: Path, heads: int, hidden: int) -> None:
    """The optimizer's BERT fusions of ``raw`` written to ``target``, after the numeric check.

    Raises ConfigError when the fused graph's hidden states differ from the unfused graph's by more
    than FUSE_TOLERANCE (an optimizer bug or an encoder the 'bert' patterns misread)."""
    from onnxruntime.transformers import optimizer

    tmp = _atomic_target(target)
    with _quiet_root_logger():
        # opt_level 0: the optimizer's own fusions only, not ONNX Runtime's session rewrites for this CPU.
        fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
        fused.save_model_to_file(str(tmp))
    diff = _probe_difference(raw, tmp)
    if not diff < FUSE_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"embedder.backend: ONNX Runtime's fused encoder differs from the export by {diff:.1e} "
            f"(allowed {FUSE_TOLERANCE:.0e}); use embedder.backend = 'torch'"
        )
    os.replace(tmp, target)


def _probe_difference(a: Path, b: Path) -> float:
    """Largest abs difference of the hidden states of two encoders on a padded probe batch (padded
    positions excluded: pooling ignores them)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, size=(2, 24), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0  # the second row is padded, as a batch of unequal texts is
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    outs = []
    for path in (a, b):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        outs.append(session.run(None, {k: feed[k] for k in names})[0])
    keep = mask.astype(bool)
    return float(np.abs(outs[0][keep] - outs[1][keep]).max())


def _quantize(fp32: Path, target: Path, flavour: str) -> None:
    """Dynamic int8 quantisation with Optimum's AutoQuantizationConfig.<flavour>(is_static=False) settings."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_target(target)
    with _quiet_root_logger():
        quantize_dynamic(
            str(fp32),
            str(tmp),
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QUInt8 if flavour == "avx2" else QuantType.QInt8,
            # Shape inference cannot type the outputs of the fused (com.microsoft) operators: they are fp32.
            extra_options={
                "WeightSymmetric": True,
                "ActivationSymmetric": False,
                "DefaultTensorType": onnx.TensorProto.FLOAT,
            },
        )
    os.replace(tmp, target)


def int8_recipe(model_dir: Path) -> str:
    """'fused' when the int8 model quantises the fused graph, '' otherwise: part of the int8 model id."""
    return "fused" if fusion_shape(model_dir) else ""


def ensure_exported(model_dir: Path, dest: Path, int8: bool, flavour: str) -> Path:
    """The ONNX file of ``model_dir`` in ``dest``, exported (fused, quantised) on first use.

    Returns ``dest/encoder_fused.onnx`` (``encoder.onnx`` for an encoder the optimizer does not fuse) or
    that name with ``_int8_<flavour>``. Raises ConfigError when ``dest`` cannot be written, the lock is
    not obtained within EXPORT_LOCK_TIMEOUT_S seconds, or the fused graph fails its check.
    """
    from filelock import FileLock, Timeout

    shape = fusion_shape(model_dir)
    raw = dest / "encoder.onnx"
    fp32 = dest / "encoder_fused.onnx" if shape else raw
    target = dest / f"{fp32.stem}_int8_{flavour}.onnx" if int8 else fp32
    if target.is_file():
        return target
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with FileLock(str(dest / "export.lock"), timeout=EXPORT_LOCK_TIMEOUT_S):
            if not fp32.is_file():  # another process may have exported while this one waited
                _export_fp32(model_dir, raw)
                if shape:
                    _fuse(raw, fp32, *shape)
                    raw.unlink()  # 90 MB that nothing reads once the fused file exists
            if int8 and not target.is_file():
                _quantize(fp32, target, flavour)
    except Timeout as e:
        raise ConfigError(f"embedder.onnx_dir: another process holds {dest / 'export.lock'}; try again") from e
    except OSError as e:
        raise ConfigError(f"embedder.onnx_dir: cannot write the ONNX export to {dest}: {e}") from e
    return target


class OnnxEncoder:
    """One ONNX Runtime session on the CPU plus the model's fast tokenizer.

    ``encode(texts, batch_size)`` -> (n, dimension) float32, L2-normalised; inputs are truncated at
    ``max_seq_length`` tokens (special tokens included), as sentence-transformers truncates.
    """

    def __init__(self, onnx_file: Path, model_dir: Path, max_seq_length: int, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        tok_file = model_dir / "tokenizer.json"
        if not tok_file.is_file():
            raise ConfigError(f"embedder.backend: ONNX needs {tok_file} (a fast tokenizer); use 'torch'")
        self.tokenizer = Tokenizer.from_file(str(tok_file))
        self.tokenizer.enable_truncation(max_seq_length)
        self.tokenizer.enable_padding()
        self.max_seq_length = max_seq_length
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = threads  # 0: ONNX Runtime's default (one per physical core)
        self.session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = [self._batch(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: feed[k] for k in self.inputs})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


@lru_cache(maxsize=4)
def load_onnx(
    model_dir: str, dest: str, int8: bool, flavour: str, max_seq_length: int, threads: int = 0
) -> OnnxEncoder:
    """One session per (model, export folder, variant, threads) per process, exported on first use."""
    check_mean_pooling(Path(model_dir))
    onnx_file = ensure_exported(Path(model_dir), Path(dest), int8, flavour)
    return OnnxEncoder(onnx_file, Path(model_dir), max_seq_length, threads)
