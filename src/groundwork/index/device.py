"""Where the embedding model runs: device, precision and texts per model call, from ``[embedder]``.

``device = "auto"`` picks CUDA when torch sees a GPU (``torch.cuda.is_available()``), else the CPU.
On CUDA the model runs in fp16 (sentence-transformers' documentation, "Speeding up Inference": half
precision on GPU) and takes bigger batches, since a GPU is host-bound at MiniLM size with 32 texts per
call. fp16 rounds the vectors slightly but keeps the model id: a GPU ingest and a CPU query process
share one index (``bench/ingest_gpu.py`` reports the largest difference to fp32 on the GPU).
The ONNX backends (``embedder.backend``) run on the CPU: device 'auto' or 'cpu', never fp16.
"""

from __future__ import annotations

from dataclasses import dataclass

from groundwork.config import EmbedderSettings
from groundwork.errors import ConfigError

CPU_BATCH = 32
CUDA_BATCH = 256


@dataclass(frozen=True)
class Placement:
    """device: a torch device string ('cpu', 'cuda', 'cuda:1', 'mps'); fp16: run the model in half
    precision; batch_size: texts per model call."""

    device: str
    fp16: bool
    batch_size: int


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def place(settings: EmbedderSettings) -> Placement:
    """Resolve ``embedder.device``, ``precision`` and ``batch_size``. Imports torch only when the device
    must be detected. Raises ConfigError for a CUDA device torch cannot see, fp16 off CUDA, or an ONNX backend off the CPU."""
    device = settings.device.strip().lower()
    if settings.backend != "torch":  # ONNX Runtime's CPU provider: the only one installed
        if device not in ("auto", "cpu") or settings.precision == "fp16":
            raise ConfigError(
                f"embedder.backend = {settings.backend!r} runs on the CPU; set embedder.device = 'cpu' "
                "(and precision 'auto' or 'fp32'), or embedder.backend = 'torch'"
            )
        return Placement("cpu", False, settings.batch_size or CPU_BATCH)
    if device == "auto":
        device = "cuda" if _cuda_available() else "cpu"
    elif device.startswith("cuda") and not _cuda_available():
        raise ConfigError(f"embedder.device = {settings.device!r}, but torch sees no CUDA device; use 'auto' or 'cpu'")
    on_cuda = device.startswith("cuda")
    if settings.precision == "fp16" and not on_cuda:
        raise ConfigError(f"embedder.precision = 'fp16' needs a CUDA device (embedder.device resolves to {device!r})")
    fp16 = settings.precision == "fp16" or (settings.precision == "auto" and on_cuda)
    batch = settings.batch_size or (CUDA_BATCH if on_cuda else CPU_BATCH)
    return Placement(device, fp16, batch)
