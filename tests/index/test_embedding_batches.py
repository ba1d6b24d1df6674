"""Embedding batches formed by token count: less padding, the same vectors, and ingest hands the
chunker's counts to the embedder (real model, real chunker, real texts from docs/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from groundwork.config import ChunkingSettings, EmbedderSettings, IngestSettings
from groundwork.index.embedder import SentenceTransformerEmbedder
from groundwork.ingest.chunking import make_chunker
from groundwork.ingest.loaders import load_file
from groundwork.ingest.sync import Ingestor

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Few characters, many word pieces (formulas, identifiers) next to plain prose: characters per token
# vary several-fold, so batches of similar characters are not batches of similar tokens.
DENSE_TEXTS = [
    "C6H12O6 + 6O2 -> 6CO2 + 6H2O; 17β-estradiol, 2,4-dinitrophenol (DNP), IL-1β/TNF-α.",
    "SNP rs8099917-T, rs12979860-C; HLA-DRB1*04:01; CYP2C19*2/*3 (p<0.001).",
    "x_7f3a9c = 0x1F4E2B9A ^ 0xC0FFEE; y_2b = [3.14159, 2.71828, 1.41421, 1.73205].",
    "K-Ras(G12D)/p53(R172H) Pdx1-Cre mice; CD4+CD25+FoxP3+ Tregs; IFN-γ/IL-17A.",
]


def texts() -> list[str]:
    """Real sentences of varied length from the documentation, and dense technical strings."""
    out = []
    for path in sorted(DOCS.glob("*.md"))[:4]:
        for line in path.read_text().splitlines():
            if 40 < len(line) < 400 and not line.startswith(("|", "```", "#")):
                out.append(line.strip())
    return out[:40] + DENSE_TEXTS * 3


@pytest.fixture(scope="module")
def small_batches() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbedderSettings(cache=False, batch_size=4))


def padded_positions(embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch, run) -> int:
    """Positions (batch size x padded length) the model computed while ``run()`` ran."""
    model = embedder.model
    shapes: list[tuple[int, ...]] = []
    original = model.preprocess

    def spy(*args, **kwargs):
        features = original(*args, **kwargs)
        shapes.append(tuple(features["input_ids"].shape))
        return features

    monkeypatch.setattr(model, "preprocess", spy)
    run()
    monkeypatch.setattr(model, "preprocess", original)
    return sum(b * n for b, n in shapes)


def test_batches_by_token_count_pad_less_and_keep_every_vector(
    small_batches: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    e, sample = small_batches, texts()
    by_chars: dict[str, np.ndarray] = {}
    ours: dict[str, np.ndarray] = {}

    def st_order() -> None:  # sentence-transformers on its own: batches by characters
        by_chars["v"] = e.model.encode(sample, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)

    def embedder_order() -> None:
        ours["v"] = e.embed(sample)

    chars = padded_positions(e, monkeypatch, st_order)
    tokens = padded_positions(e, monkeypatch, embedder_order)
    real = sum(min(e.count_tokens(t), e.max_tokens) + 2 for t in sample)
    assert tokens < chars  # the same texts, fewer padded positions
    assert tokens - real < 0.5 * (chars - real)  # at least half of the padding is gone
    assert np.abs(ours["v"] - by_chars["v"]).max() < 1e-5  # padding only: the vectors are the same
    one_by_one = np.stack([e.embed([t])[0] for t in sample[-6:]])
    assert np.abs(ours["v"][-6:] - one_by_one).max() < 1e-5  # row i is still texts[i]


def test_token_counts_given_by_the_caller_order_the_batches(small_batches: SentenceTransformerEmbedder) -> None:
    sample = ["short", "a much longer text with many more words in it", "mid length text here", "x", "y z"]
    counts = [small_batches.count_tokens(t) for t in sample]
    assert small_batches.batches(sample, counts) == small_batches.batches(sample)
    assert small_batches.batches(sample, counts)[0][0] == 1  # longest first
    with pytest.raises(ValueError, match="2 token counts for 5 texts"):
        small_batches.embed(sample, token_counts=[1, 2])


@pytest.mark.parametrize("strategy", ["structure", "fixed", "hierarchical", "semantic"])
def test_ingest_hands_the_embedder_the_chunkers_token_counts(strategy: str, make_kb, monkeypatch) -> None:
    kb = make_kb(**{"chunking.strategy": strategy})
    calls: list[tuple[list[str], list[int] | None]] = []
    original = kb.embedder.embed

    def spy(texts, token_counts=None):
        calls.append((list(texts), token_counts))
        return original(texts, token_counts)

    monkeypatch.setattr(kb.embedder, "embed", spy)
    report = kb.ingest([DOCS / "concepts.md"])
    assert report.chunks_written > 5
    texts, counts = calls[-1]  # the flush (the semantic chunker embeds sentences before it)
    assert len(texts) == report.chunks_written and len({t.split("\n")[0] for t in texts}) > 2  # several heads
    assert counts is not None
    exact = [kb.embedder.count_tokens(t) for t in texts]
    if strategy == "fixed":  # a window may start inside a word: re-tokenized, its text can differ by one
        assert max(abs(a - b) for a, b in zip(counts, exact)) <= 1
    else:
        assert counts == exact


def test_masked_chunks_are_counted_again(embedder, monkeypatch) -> None:
    from groundwork.guard.guardrails import mask_pii_for_ingest

    chunker = make_chunker(ChunkingSettings(), embedder)
    ingestor = Ingestor(None, embedder, chunker, IngestSettings(), text_transform=mask_pii_for_ingest)  # type: ignore[arg-type]
    text = b"# Contacts\n\nWrite to jane.doe@example.com or call +44 20 7946 0958 about the refund policy.\n"
    [doc] = load_file(Path("contacts.md"), text)
    chunks = ingestor._chunk(doc)
    assert "jane.doe" not in chunks[0].text
    assert ingestor._search_tokens(chunks) == [embedder.count_tokens(c.search_text) for c in chunks]
