"""ONNX Runtime backends of the embedder (``embedder.backend = "onnx" | "onnx-int8"``).

The model is exported once from the configured sentence-transformers folder (the bundled MiniLM by
default) into a cache folder (``embedder.onnx_dir``, default ``~/.cache/groundwork/models``), never
into the model's own folder, which may be a read-only site-packages directory. Export and
quantisation run under a file lock (``filelock``, flock(2)) and write through a temporary file and
``os.replace``, so two processes starting at once export once and never read a half-written file.

- fp32: ``torch.onnx.export`` (TorchScript exporter) of the Hugging Face encoder with transformers'
  eager attention (``attn_implementation="eager"``). The SDPA export (the transformers default) adds a
  NaN guard (``IsNaN`` + ``Where``) over every layer's (batch, heads, tokens, tokens) attention matrix
  and its int8 quantises both attention products: it ran int8 at ~0.8x the eager export's speed on
  AVX-512 VNNI (docs/benchmarks.md). ONNX Runtime runs the same function in fp32 (max abs difference
  to torch ~1e-6 on MiniLM), so it keeps the model id. Fusing the graph offline with
  ``onnxruntime.transformers.optimizer`` (one ``Attention`` operator per layer) was measured too: no
  faster than the eager export with ONNX Runtime's load-time fusions, and its int8 lost more nDCG.
- int8: ONNX Runtime dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``; weights int8
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
from functools import lru_cache
from pathlib import Path

import numpy as np

from groundwork.errors import ConfigError

QUANT_FLAVOURS = ("avx2", "avx512_vnni", "arm64")
EXPORT_LOCK_TIMEOUT_S = 900  # an export of a MiniLM-sized model takes seconds; a stuck one must not hang forever
# The graph the int8 model quantises, part of its model id: another export quantises to other vectors.
INT8_RECIPE = "eager"


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


def _export_fp32(model_dir: Path, target: Path, attention: str = "eager") -> None:
    """torch.onnx.export of the encoder: inputs (batch, tokens) int64, output last_hidden_state.
    ``attention``: transformers' attn_implementation ('sdpa' only for bench/embed_backends.py's before)."""
    import torch
    from transformers import AutoModel

    # Eager attention: the SDPA export guards every attention matrix against NaN rows (see the module doc).
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation=attention).eval()
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


def _quantize(fp32: Path, target: Path, flavour: str) -> None:
    """Dynamic int8 quantisation with Optimum's AutoQuantizationConfig.<flavour>(is_static=False) settings."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_target(target)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ONNX Runtime logs "consider pre-processing" on the root logger
    try:
        quantize_dynamic(
            str(fp32),
            str(tmp),
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QUInt8 if flavour == "avx2" else QuantType.QInt8,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    finally:
        root.setLevel(level)
    os.replace(tmp, target)


def ensure_exported(model_dir: Path, dest: Path, int8: bool, flavour: str) -> Path:
    """The ONNX file of ``model_dir`` in ``dest``, exported (and quantised) on first use.

    Returns ``dest/encoder.onnx`` or ``dest/encoder_int8_<flavour>.onnx`` (``model*.onnx`` files in
    ``dest`` are SDPA exports of earlier versions and are not read). Raises ConfigError when ``dest``
    cannot be written or the lock is not obtained within EXPORT_LOCK_TIMEOUT_S seconds.
    """
    from filelock import FileLock, Timeout

    fp32 = dest / "encoder.onnx"
    target = dest / f"encoder_int8_{flavour}.onnx" if int8 else fp32
    if target.is_file():
        return target
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with FileLock(str(dest / "export.lock"), timeout=EXPORT_LOCK_TIMEOUT_S):
            if not fp32.is_file():  # another process may have exported while this one waited
                _export_fp32(model_dir, fp32)
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
