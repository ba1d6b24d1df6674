from __future__ import annotations

import json
from pathlib import Path

import docx
import pytest

from groundwork.errors import LoaderError, UnsupportedFileError
from groundwork.ingest.loaders import load_file, read_file
from groundwork.ingest.records import RecordOptions
from tests.conftest import make_pdf, write

MB = 10**6


def load(path: Path, options: RecordOptions | None = None):
    return load_file(path, read_file(path, 50 * MB), options)


def test_markdown_sections_keep_heading_path(tmp_path: Path) -> None:
    p = write(
        tmp_path / "guide.md",
        "# Guide\n\nIntro text.\n\n## Install\n\nRun make.\n\n### Linux\n\nUse apt.\n\n## Use\n\nAsk.\n",
    )
    [doc] = load(p)
    assert doc.title == "Guide"
    paths = [s.heading_path for s in doc.sections]
    assert paths == [("Guide",), ("Guide", "Install"), ("Guide", "Install", "Linux"), ("Guide", "Use")]
    assert "Use apt." in doc.sections[2].text


def test_markdown_heading_inside_code_fence_is_not_a_heading(tmp_path: Path) -> None:
    p = write(tmp_path / "a.md", "# A\n\ntext\n\n```bash\n# not a heading\necho hi\n```\n")
    [doc] = load(p)
    assert [s.heading_path for s in doc.sections] == [("A",)]


def test_html_main_content_without_boilerplate(tmp_path: Path) -> None:
    html = (
        "<html><head><title>Leave policy</title></head><body><nav>Home | About | Careers</nav><article>"
        "<h1>Leave policy</h1><p>Employees receive twenty-five days of paid annual leave every calendar year.</p>"
        "<h2>Parental leave</h2><p>Parents receive sixteen weeks of fully paid parental leave after a birth.</p>"
        "</article><footer>Copyright Example Corp</footer></body></html>"
    )
    [doc] = load(write(tmp_path / "p.html", html))
    assert doc.title == "Leave policy"
    assert "sixteen weeks" in doc.text and "Copyright" not in doc.text
    assert ("Leave policy", "Parental leave") in [s.heading_path for s in doc.sections]


def test_pdf_pages_are_kept(tmp_path: Path) -> None:
    p = make_pdf(tmp_path / "r.pdf", ["First page about apples.", "Second page about pears."])
    [doc] = load(p)
    assert [s.page for s in doc.sections] == [1, 2]
    assert "pears" in doc.sections[1].text


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    d = docx.Document()
    d.add_heading("Handbook", level=1)
    d.add_paragraph("Welcome to the company handbook.")
    d.add_heading("Holidays", level=2)
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Region", "Days"
    table.cell(1, 0).text, table.cell(1, 1).text = "UK", "25"
    path = tmp_path / "h.docx"
    d.save(str(path))
    [doc] = load(path)
    assert doc.sections[-1].heading_path == ("Handbook", "Holidays")
    assert "UK | 25" in doc.text


def test_json_records_with_fields(tmp_path: Path) -> None:
    rows = [
        {"url": "u1", "body": "Alpha text.", "source": "BBC", "n": 3},
        {"url": "u2", "body": "Beta text.", "source": "CNN", "n": 4},
    ]
    p = write(tmp_path / "c.json", json.dumps(rows))
    docs = load(p, RecordOptions("body", "url", ("source", "n")))
    assert [d.doc_id for d in docs] == ["u1", "u2"]
    assert docs[1].metadata == {"source": "CNN", "n": 4}
    assert docs[0].content_hash != docs[1].content_hash


def test_jsonl_default_text_field_and_bad_line(tmp_path: Path) -> None:
    p = write(tmp_path / "r.jsonl", '{"text": "one"}\n\n{"text": "two"}\n')
    assert [d.text for d in load(p)] == ["one", "two"]
    bad = write(tmp_path / "bad.jsonl", '{"text": "one"}\n{oops\n')
    docs = load(bad)
    assert [d.text for d in docs] == ["one"]
    assert [(p.label, "not valid JSON" in p.reason) for p in docs.problems] == [("line 2", True)]
    with pytest.raises(LoaderError, match="line 1: not valid JSON"):
        load(write(tmp_path / "allbad.jsonl", "{oops\n"))


def test_json_missing_text_field_names_field(tmp_path: Path) -> None:
    p = write(tmp_path / "c.json", json.dumps([{"body": "x"}]))
    with pytest.raises(LoaderError, match="'summary'"):
        load(p, RecordOptions(text_field="summary"))
    mixed = write(tmp_path / "m.json", json.dumps([{"id": 1, "body": "x"}, {"id": 2, "summary": "y"}, {"id": 3}]))
    docs = load(mixed, RecordOptions(text_field="summary", id_field="id"))
    assert [d.doc_id for d in docs] == ["2"]
    assert [(p.label, p.doc_id) for p in docs.problems] == [("record 1", "1"), ("record 3", "3")]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("binary.txt", b"\x00\x01\x02ELF\x00" * 50, "binary"),
        ("latin1.txt", "café crème".encode("latin-1"), "not valid UTF-8"),
        ("corrupt.pdf", b"%PDF-1.4\n%garbage that is not a pdf body\n", "PDF"),
        ("corrupt.docx", b"PK\x03\x04 not really a zip", "DOCX"),
    ],
)
def test_bad_files_raise_loader_error_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    p = write(tmp_path / name, content)
    with pytest.raises(LoaderError, match=reason) as exc:
        load(p)
    assert exc.value.path == str(p)


def test_size_limit_and_unknown_type(tmp_path: Path) -> None:
    big = write(tmp_path / "big.txt", "word " * 1000)
    with pytest.raises(LoaderError, match="exceeds"):
        read_file(big, 100)
    with pytest.raises(UnsupportedFileError):
        read_file(write(tmp_path / "x.xyz", "data"), MB)


def test_title_field_names_the_title_that_heads_every_chunk(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "headline": "Leeds warehouse moves", "title": "ignored", "text": "Orders now ship from York."},
        {"id": "b", "headline": ["not", "a", "title"], "text": "Second record."},
    ]
    p = write(tmp_path / "news.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    default = load(p, RecordOptions(id_field="id"))
    assert [d.title for d in default] == ["ignored", ""]  # by default the field named "title"
    docs = load(p, RecordOptions(id_field="id", title_field="headline"))
    assert [d.title for d in docs] == ["Leeds warehouse moves"]
    assert [(pr.label, "--title-field" in pr.reason) for pr in docs.problems] == [("line 2", True)]
    # another title is other indexed text: the document must not look unchanged to a re-ingest
    assert docs[0].content_hash != default[0].content_hash
