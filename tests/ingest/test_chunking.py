from __future__ import annotations

import pytest

from groundwork.config import ChunkingSettings
from groundwork.errors import ConfigError
from groundwork.ingest.chunking import (
    FixedTokenChunker,
    HierarchicalChunker,
    SemanticChunker,
    StructureChunker,
    make_chunker,
)
from groundwork.types import Document, Section

SENTENCES = [f"Sentence number {i} talks about topic {i % 7} in some detail for the reader." for i in range(120)]


def doc(sections: list[Section], doc_id: str = "d1") -> Document:
    return Document(doc_id=doc_id, source=doc_id, sections=sections, content_hash="h", title="T", metadata={"k": "v"})


def long_doc() -> Document:
    return doc(
        [
            Section("# Intro\n\n" + " ".join(SENTENCES[:40]), ("Intro",)),
            Section(
                "## Details\n\n" + "\n\n".join(" ".join(SENTENCES[i : i + 10]) for i in range(40, 120, 10)),
                ("Intro", "Details"),
            ),
        ]
    )


def test_fixed_windows_respect_size_and_overlap(embedder) -> None:
    chunks = FixedTokenChunker(embedder, 64, 16).chunk(long_doc())
    assert len(chunks) > 10
    assert all(embedder.count_tokens(c.text) <= 64 for c in chunks)
    # consecutive windows share text: the end of one reappears at the start of the next
    a, b = chunks[0].text, chunks[1].text
    assert (
        a.split()[-3:]
        == b.split()[: len(b.split())][b.split().index(a.split()[-3]) : b.split().index(a.split()[-3]) + 3]
    )
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].heading_path == ("Intro", "Details")


def test_structure_chunks_fit_and_keep_sentences_whole(embedder) -> None:
    chunks = StructureChunker(embedder, 80).chunk(long_doc())
    assert all(embedder.count_tokens(c.text) <= 80 for c in chunks)
    for c in chunks:  # every chunk ends at a sentence boundary
        assert c.text.rstrip().endswith(".")
    assert {c.heading_path for c in chunks} == {("Intro",), ("Intro", "Details")}
    # nothing lost: every sentence is in some chunk
    joined = " ".join(c.text for c in chunks)
    assert all(s in joined for s in SENTENCES)
    assert chunks[0].metadata == {"k": "v"} and chunks[0].chunk_id == "d1::0"


def test_structure_merges_small_sections(embedder) -> None:
    d = doc([Section("# A\n\nShort.", ("A",)), Section("## B\n\nAlso short.", ("A", "B"))])
    chunks = StructureChunker(embedder, 200, min_tokens=24).chunk(d)
    assert len(chunks) == 1 and "Also short." in chunks[0].text


def test_pdf_pages_are_not_merged(embedder) -> None:
    d = doc([Section("Page one text.", page=1), Section("Page two text.", page=2)])
    chunks = StructureChunker(embedder, 200, min_tokens=24).chunk(d)
    assert [c.page for c in chunks] == [1, 2]


def test_hierarchical_children_point_to_parents(embedder) -> None:
    chunks = HierarchicalChunker(embedder, 300, 60).chunk(long_doc())
    parents = {c.parent_id for c in chunks}
    assert 1 < len(parents) < len(chunks)
    for c in chunks:
        assert embedder.count_tokens(c.text) <= 60
        assert c.text in c.parent_text or all(s in c.parent_text for s in c.text.split("\n\n"))
        assert embedder.count_tokens(c.parent_text) <= 300


def test_semantic_splits_at_topic_change(embedder) -> None:
    cooking = [
        f"To bake bread, knead the dough {w} and let it rise in a warm kitchen."
        for w in ("firmly", "gently", "twice", "slowly")
    ]
    space = [
        f"The rocket reached orbit and the satellite {w} deployed its solar panels."
        for w in ("quickly", "safely", "then", "finally")
    ]
    d = doc([Section(" ".join(cooking + space))])
    chunks = SemanticChunker(embedder, 200, percentile=15).chunk(d)
    assert len(chunks) >= 2
    assert any(c.text.startswith("The rocket") for c in chunks)  # the boundary falls between topics
    assert all(not ("bread" in c.text and "rocket" in c.text) for c in chunks)


def test_make_chunker_rejects_chunks_longer_than_model(embedder) -> None:
    with pytest.raises(ConfigError, match="chunking.chunk_tokens"):
        make_chunker(ChunkingSettings(chunk_tokens=400), embedder)
    assert isinstance(make_chunker(ChunkingSettings(strategy="semantic"), embedder), SemanticChunker)


def test_long_table_is_split_by_rows_and_keeps_its_layout(embedder) -> None:
    rows = "\n".join(
        f"| `key_{i}` | {i} | the meaning of setting number {i}. It has two sentences. |" for i in range(40)
    )
    d = doc([Section("## Keys\n\n| key | default | meaning |\n| --- | --- | --- |\n" + rows, ("Keys",))])
    chunks = StructureChunker(embedder, 120).chunk(d)
    assert len(chunks) > 2
    for c in chunks:
        assert embedder.count_tokens(c.text) <= 120
        body = [ln for ln in c.text.splitlines() if ln.strip() and not ln.startswith("#")]
        assert all(ln.startswith("|") and ln.endswith("|") for ln in body), c.text
    # Every chunk of the table repeats its header, so each group of rows says what its columns are.
    table_chunks = [c for c in chunks if "`key_" in c.text]
    assert len(table_chunks) > 2
    assert all("| key | default | meaning |\n| --- | --- | --- |\n| `key_" in c.text for c in table_chunks)
    assert sum(c.text.count("`key_") for c in table_chunks) == 40


def test_wrapped_lines_are_joined_before_sentence_splitting() -> None:
    from groundwork.text import split_sentences

    text = "The first sentence is wrapped\nacross two lines. The second one is not.\n- item one\n- item two"
    assert split_sentences(text) == [
        "The first sentence is wrapped across two lines.",
        "The second one is not.",
        "- item one",
        "- item two",
    ]
    assert split_sentences("It lives in `./.groundwork` by default. Run `make install` first!") == [
        "It lives in `./.groundwork` by default.",
        "Run `make install` first!",
    ]


def test_abbreviations_numbers_and_addresses_do_not_end_a_sentence() -> None:
    from groundwork.text import split_sentences

    text = (
        "Dr. Smith met Mr. Jones in Washington, D.C. on Monday. Use e.g. the default, i.e. hybrid search. "
        "Version 1.2.3 costs $3.50 per call, 2.5% more than in Q3. Smith et al. found no effect (p < 0.05). "
        "Mail support@acme.example or see vpn.example.com today. Why? Because."
    )
    assert split_sentences(text) == [
        "Dr. Smith met Mr. Jones in Washington, D.C. on Monday.",
        "Use e.g. the default, i.e. hybrid search.",
        "Version 1.2.3 costs $3.50 per call, 2.5% more than in Q3.",
        "Smith et al. found no effect (p < 0.05).",
        "Mail support@acme.example or see vpn.example.com today.",
        "Why?",
        "Because.",
    ]


def test_markdown_prose_keeps_list_markers_bold_and_images_inside_their_sentence() -> None:
    from groundwork.text import split_sentences

    assert split_sentences("1. The question passes the guardrails. Then it is embedded.") == [
        "1. The question passes the guardrails.",
        "Then it is embedded.",
    ]
    assert split_sentences("**Target 1.** Met with int8. ![chart](img/peers.png)") == [
        "**Target 1.** Met with int8.",
        "![chart](img/peers.png)",
    ]
    assert split_sentences("They average 2.4 chunks (the corpus 2.2.) The best chunk stays.") == [
        "They average 2.4 chunks (the corpus 2.2.)",
        "The best chunk stays.",
    ]


def test_the_sentence_splitter_is_part_of_every_sentence_chunkers_fingerprint(embedder) -> None:
    """Another segmenter moves chunk boundaries: the sync's pipeline hash (and the eval index cache) must
    see it, so an index is re-chunked rather than mixing boundaries of two segmenters."""
    from groundwork.text import SENTENCE_SPLITTER

    sentence_chunkers = [
        StructureChunker(embedder, 200),
        SemanticChunker(embedder, 200),
        HierarchicalChunker(embedder, 800, 128),
    ]
    assert all(f":{SENTENCE_SPLITTER}:" in c.fingerprint for c in sentence_chunkers)
    assert SENTENCE_SPLITTER not in FixedTokenChunker(embedder, 200, 0).fingerprint  # never splits sentences
