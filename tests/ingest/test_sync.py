from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_pdf, write


def corpus(root: Path) -> Path:
    write(root / "refunds.md", "# Refunds\n\nCustomers can get a full refund within 30 days of purchase.\n")
    write(root / "shipping.txt", "Orders ship within two business days from the Leeds warehouse.")
    write(root / "sub" / "hours.md", "# Hours\n\nThe office is open Monday to Friday, nine to five.\n")
    return root


def test_rerun_is_idempotent_and_embeds_nothing(make_kb, tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    kb = make_kb()
    first = kb.ingest([docs])
    assert (first.added, first.failed, first.version) == (3, [], 1)
    n = kb.count_chunks()
    encoded = kb.embedder.encoded
    again = make_kb().ingest([docs])  # a new process-like instance over the same folder
    assert (again.added, again.updated, again.unchanged, again.deleted) == (0, 0, 3, 0)
    assert again.chunks_embedded == 0 and again.version is None
    assert kb.embedder.encoded == encoded
    assert make_kb().count_chunks() == n
    assert len(make_kb().versions()) == 1


def test_changed_file_replaces_its_chunks(make_kb, tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    kb = make_kb()
    kb.ingest([docs])
    write(docs / "refunds.md", "# Refunds\n\nRefunds are no longer offered after 14 days.\n")
    report = make_kb().ingest([docs])
    assert (report.updated, report.unchanged, report.version) == (1, 2, 2)
    kb2 = make_kb()
    texts = [h.chunk.text for h in kb2.search("refund", mode="bm25", top_k=10)]
    assert any("14 days" in t for t in texts) and not any("30 days" in t for t in texts)
    ids = kb2.store.chunk_ids()
    assert len(ids) == len(set(ids)) == kb2.count_chunks()
    assert [v.updated for v in kb2.versions()] == [0, 1]


def test_deleted_file_is_removed_on_sync_but_not_without(make_kb, tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    make_kb().ingest([docs])
    (docs / "sub" / "hours.md").unlink()
    kept = make_kb().ingest([docs], sync=False)
    assert kept.deleted == 0 and len(make_kb().documents()) == 3
    report = make_kb().ingest([docs])
    assert report.deleted == 1
    assert {Path(d.doc_id).name for d in make_kb().documents()} == {"refunds.md", "shipping.txt"}


def test_records_removed_from_json_file_are_deleted(make_kb, tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.jsonl",
        "\n".join(json.dumps({"id": i, "text": f"record number {i} about cats"}) for i in range(4)),
    )
    make_kb().ingest([f], id_field="id")
    write(f, "\n".join(json.dumps({"id": i, "text": f"record number {i} about cats"}) for i in range(3)))
    report = make_kb().ingest([f], id_field="id")
    assert (report.deleted, report.unchanged) == (1, 3)


def test_one_bad_record_fails_alone_and_keeps_its_indexed_version(make_kb, tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.jsonl", "\n".join(json.dumps({"id": i, "text": f"record {i} about owls"}) for i in range(4))
    )
    make_kb().ingest([f], id_field="id")
    rows = [json.dumps({"id": i, "text": f"record {i} about owls, revised"}) for i in range(4)]
    rows[1] = json.dumps({"id": 1, "txt": "typo in the field name"})
    rows[2] = "{broken json"
    write(f, "\n".join(rows))
    report = make_kb().ingest([f], id_field="id")
    assert report.updated == 2
    assert sorted(r.path.rsplit("#", 1)[1] for r in report.failed) == ["line 2", "line 3"]
    # Neither bad record loses its indexed version: record 1's id is readable; line 3 has no readable
    # id, so nothing of this file is deleted in this run.
    assert report.deleted == 0
    assert sorted(d.doc_id for d in make_kb().documents()) == ["0", "1", "2", "3"]
    write(f, "\n".join(r for i, r in enumerate(rows) if i != 2))  # the broken line removed for good
    assert make_kb().ingest([f], id_field="id").deleted == 1


def test_bad_files_are_named_and_good_files_indexed(make_kb, tmp_path: Path) -> None:
    """Issue #2 'must show' 4: a folder mixing good and bad files."""
    docs = corpus(tmp_path / "docs")
    make_pdf(docs / "good.pdf", ["The warranty covers parts and labour for two years."])
    write(docs / "corrupt.pdf", b"%PDF-1.7\n1 0 obj <</Type /Catalog>> broken xref \x00\x01")
    write(docs / "binary.txt", bytes(range(256)) * 20)
    write(docs / "empty.md", b"")
    write(docs / "latin1.txt", "Größe und Gewicht".encode("latin-1"))
    write(docs / "clip.mp4", b"\x00\x00\x00\x18ftypmp42")
    kb = make_kb()
    report = kb.ingest([docs])
    assert report.added == 4
    failed = {Path(f.path).name: f.reason for f in report.failed}
    assert set(failed) == {"corrupt.pdf", "binary.txt", "empty.md", "latin1.txt"}
    assert "PDF" in failed["corrupt.pdf"] and "binary" in failed["binary.txt"]
    assert "empty" in failed["empty.md"] and "UTF-8" in failed["latin1.txt"]
    assert [Path(s.path).name for s in report.skipped] == ["clip.mp4"]
    hit = kb.search("how long is the warranty", top_k=1)[0]
    assert hit.chunk.source.endswith("good.pdf") and hit.chunk.page == 1


def test_file_that_breaks_keeps_its_indexed_chunks(make_kb, tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    make_kb().ingest([docs])
    write(docs / "shipping.txt", b"\x00\x00 now binary")
    report = make_kb().ingest([docs])
    assert len(report.failed) == 1 and report.deleted == 0
    assert any(d.doc_id.endswith("shipping.txt") for d in make_kb().documents())


def test_missing_path_is_reported(make_kb, tmp_path: Path) -> None:
    report = make_kb().ingest([tmp_path / "nope"])
    assert report.failed[0].reason == "no such file or folder"


def test_a_write_for_a_key_never_replaces_a_document_of_another_owner(make_kb) -> None:
    from groundwork.ingest.sources import bytes_item
    from groundwork.types import Access

    kb = make_kb()
    kb.ingest([], items=[bytes_item("upload://acme/plan.md", b"# Plan\n\nAcme plan, marker ACME.\n")], tenant="acme")
    report = kb.ingest(
        [],
        items=[bytes_item("upload://acme/plan.md", b"# Plan\n\nGlobex plan, marker GLOBEX.\n")],
        tenant="globex",
        replace_foreign=False,
    )
    assert report.failed and "another tenant or other groups" in report.failed[0].reason
    [hit] = kb.search("plan marker", access=Access("acme"))
    assert "ACME" in hit.chunk.text
    # the operator (the default) may re-assign a document to another owner
    kb.ingest([], items=[bytes_item("upload://acme/plan.md", b"# Plan\n\nMoved, marker MOVED.\n")], tenant="globex")
    assert kb.search("plan marker", access=Access("acme")) == []
