"""Office files, e-mail, images and scanned PDFs: each test builds a real file, ingests it into one
shared knowledge base (real embedding model, real LanceDB files, real OCR), asks a question whose answer
is only in that file, and checks the citation (slide N, sheet S / row R, page N). Then the attacks: an
XLSX zip bomb, a PPTX with an entity-expansion DTD, an e-mail whose attachment name climbs out of its
folder, a CSV with a huge field — each fails alone (or is neutralised) with a named reason."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest
from PIL import Image, ImageDraw, ImageFont
from pptx import Presentation
from pptx.util import Inches

from groundwork.config import load_settings
from groundwork.errors import LoaderError
from groundwork.ingest.loaders import LoadLimits, load_file
from groundwork.ingest.mail import safe_name
from groundwork.kb import KnowledgeBase
from groundwork.types import Citation, page_label

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
HAS_TESSERACT = shutil.which("tesseract") is not None
needs_tesseract = pytest.mark.skipif(
    not HAS_TESSERACT, reason="OCR needs Debian's tesseract-ocr (`make install` installs it)"
)


def text_image(lines: list[str], size: tuple[int, int] = (900, 160)) -> Image.Image:
    """Black text on white, 30 px DejaVu Sans: a small 'scan' that OCR reads in well under a second."""
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).multiline_text((20, 20), "\n".join(lines), fill=0, font=ImageFont.truetype(FONT, 30))
    return image


def build_pptx(path: Path) -> None:
    deck = Presentation()
    slides = [
        ("Roadmap", "The billing rewrite ships in March.", "Remind everyone about the code freeze."),
        ("Risks", "Our biggest risk is vendor lock-in with Zephyr Cloud.", "Finance wants a second quote."),
    ]
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        slide.notes_slide.notes_text_frame.text = notes
    table = deck.slides[1].shapes.add_table(2, 2, Inches(1), Inches(5), Inches(6), Inches(1)).table
    for (r, c), text in {(0, 0): "Owner", (0, 1): "Mitigation", (1, 0): "Priya", (1, 1): "Dual sourcing"}.items():
        table.cell(r, c).text = text
    deck.save(path)


def build_xlsx(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Warehouses"
    sheet.append(["City", "Manager", "Forklifts"])
    sheet.append(["Tromsø", "Ingrid Halvorsen", 4])
    sheet.append(["Bergen", "Magnus Lie", 11])
    big = book.create_sheet("Log")  # larger than table_row_units below: grouped rows, header repeated
    big.append(["Day", "Event"])
    for day in range(1, 41):
        big.append([day, "routine inspection" if day != 33 else "the sprinkler valve was replaced"])
    book.save(path)


def build_eml(path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "Offsite planning"
    msg["From"] = "Dana Wu <dana@example.org>"
    msg["Date"] = "Mon, 30 Nov 2026 10:00:00 +0000"
    msg.set_content("The team offsite takes place in Lisbon, at the Alfama guesthouse.")
    menu = "dish,allergen\nsea bass,fish\nalmond tart,tree nuts\n"
    msg.add_attachment(menu.encode(), maintype="text", subtype="csv", filename="../../../../tmp/menu.csv")
    msg.add_attachment(b"\x7fELF....", maintype="application", subtype="octet-stream", filename="tool.exe")
    path.write_bytes(bytes(msg))


def build_scanned_pdf(path: Path) -> None:
    """Two image-only pages (no text layer), saved by Pillow: what a scanner produces."""
    first = text_image(["Scanned memo, page one.", "The archive room is on level minus two."]).convert("RGB")
    second = text_image(["Page two of the memo.", "Visitor badges are printed at the east desk."]).convert("RGB")
    first.save(path, "PDF", resolution=100, save_all=True, append_images=[second])


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> tuple[KnowledgeBase, object, Path]:
    root = tmp_path_factory.mktemp("formats")
    docs = root / "docs"
    docs.mkdir()
    build_pptx(docs / "deck.pptx")
    build_xlsx(docs / "book.xlsx")
    (docs / "rates.csv").write_text("plan,monthly price\nStarter,9 EUR\nQuasar Pro,49 EUR\n", encoding="utf-8")
    build_eml(docs / "offsite.eml")
    text_image(["The courtyard fountain was built in 1887."]).save(docs / "plaque.png")
    build_scanned_pdf(docs / "memo.pdf")
    (docs / "huge.csv").write_text("a,b\n1," + "x" * 200_000 + "\n", encoding="utf-8")
    knowledge = KnowledgeBase(
        settings=load_settings(kb=root / "kb", **{"ingest.table_row_units": 10, "ingest.table_rows_per_group": 15})
    )
    report = knowledge.ingest([docs])
    return knowledge, report, docs


def cited(kb: KnowledgeBase, question: str) -> list[Citation]:
    answer = kb.ask(question)
    assert not answer.abstained, question
    return answer.citations


@pytest.mark.slow  # the shared knowledge base: model, ingest and OCR
def test_pptx_slide_is_cited_as_slide_n(kb) -> None:
    knowledge, _, _ = kb
    citations = cited(knowledge, "Which cloud vendor is our biggest lock-in risk?")
    assert citations[0].label == "deck.pptx, slide 2" and citations[0].heading == "Risks"
    chunks = knowledge.document_chunks(citations[0].doc_id)
    assert "Finance wants a second quote" in chunks[1].text and "Priya | Dual sourcing" in chunks[1].text


@pytest.mark.slow
def test_xlsx_row_is_cited_as_sheet_and_row(kb) -> None:
    knowledge, _, _ = kb
    citations = cited(knowledge, "Who manages the Bergen warehouse?")
    assert citations[0].label == "book.xlsx, sheet Warehouses, row 3"
    assert "Manager: Magnus Lie" in citations[0].text
    # A large sheet is chunked by groups of rows, each with the header row repeated.
    hit = knowledge.search("sprinkler valve replaced", top_k=1)[0].chunk
    assert page_label(hit.doc_id, hit.source, hit.page, hit.heading) == "sheet Log, rows 32-41"
    assert hit.text.startswith("| row | Day | Event |") and "| 34 | 33 | the sprinkler valve" in hit.text


@pytest.mark.slow
def test_csv_row_is_cited(kb) -> None:
    knowledge, _, _ = kb
    citations = cited(knowledge, "What is the monthly price of the Quasar Pro plan?")
    assert citations[0].label == "rates.csv, row 3" and "monthly price: 49 EUR" in citations[0].text


@pytest.mark.slow
def test_eml_body_metadata_and_attachment_as_its_own_document(kb) -> None:
    knowledge, _, docs = kb
    body = cited(knowledge, "Where does the team offsite take place?")
    assert body[0].doc_id == str(docs / "offsite.eml") and "Alfama guesthouse" in body[0].text
    chunk = knowledge.document_chunks(body[0].doc_id)[0]
    assert chunk.metadata["email_subject"] == "Offsite planning"
    assert chunk.metadata["email_from"] == "Dana Wu <dana@example.org>"
    menu = cited(knowledge, "Which dish contains tree nuts?")
    # The hostile name is reduced to its last component: never a path, only the document's name.
    assert menu[0].doc_id == f"{docs / 'offsite.eml'}#attachment-1/menu.csv"
    assert menu[0].source == str(docs / "offsite.eml") and menu[0].label.endswith("row 3")
    assert not (Path("/tmp") / "menu.csv").exists() or (Path("/tmp") / "menu.csv").stat().st_size != 48
    info = {d.doc_id: d for d in knowledge.documents()}
    assert info[str(docs / "offsite.eml")].title == "Offsite planning"


@needs_tesseract
@pytest.mark.slow
def test_image_is_read_by_ocr_with_its_confidence(kb) -> None:
    knowledge, _, _ = kb
    citations = cited(knowledge, "When was the courtyard fountain built?")
    assert citations[0].label == "plaque.png, p. 1" and "1887" in citations[0].text
    chunk = knowledge.document_chunks(citations[0].doc_id)[0]
    assert chunk.metadata["ocr"] is True and 0.8 < chunk.metadata["ocr_confidence"] <= 1.0


@needs_tesseract
@pytest.mark.slow
def test_scanned_pdf_pages_keep_their_page_numbers(kb) -> None:
    knowledge, _, _ = kb
    citations = cited(knowledge, "Where are visitor badges printed?")
    assert citations[0].label == "memo.pdf, p. 2" and "east desk" in citations[0].text
    assert knowledge.document_chunks(citations[0].doc_id)[0].metadata["ocr"] is True


@pytest.mark.slow
def test_a_csv_with_a_huge_field_fails_alone(kb) -> None:
    _, report, docs = kb
    failed = {f.path: f.reason for f in report.failed}
    assert "field larger than field limit" in failed[str(docs / "huge.csv")]
    names = ["deck.pptx", "book.xlsx", "rates.csv", "offsite.eml"] + (
        ["plaque.png", "memo.pdf"] if HAS_TESSERACT else []
    )
    assert {f.path for f in report.files if f.status == "added"} == {str(docs / n) for n in names}


@pytest.mark.slow
def test_an_unchanged_email_keeps_its_attachments_on_the_next_sync(kb) -> None:
    knowledge, _, docs = kb
    before = {d.doc_id for d in knowledge.documents()}
    again = knowledge.ingest([docs])
    assert again.deleted == 0 and again.added == 0 and {d.doc_id for d in knowledge.documents()} == before


# -- attacks -------------------------------------------------------------------------------------------


def _zip_with(raw: bytes, extra: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        for name, data in extra.items():
            dst.writestr(name, data)
    return out.getvalue()


def test_an_xlsx_zip_bomb_is_refused_before_openpyxl_inflates_it(tmp_path: Path) -> None:
    build_xlsx(tmp_path / "ok.xlsx")
    bomb = _zip_with((tmp_path / "ok.xlsx").read_bytes(), {"xl/worksheets/sheet3.xml": b"\0" * 60_000_000})
    with pytest.raises(LoaderError, match=r"compressed [\d,]+:1, over the 100:1 limit \(ingest.max_zip_ratio\)"):
        load_file(tmp_path / "bomb.xlsx", bomb)


def test_a_pptx_with_an_entity_expansion_dtd_is_refused(tmp_path: Path) -> None:
    build_pptx(tmp_path / "ok.pptx")
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b'<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main">&lol2;</p:sld>'
    )
    raw = (tmp_path / "ok.pptx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as src:
        members = {i.filename: src.read(i.filename) for i in src.infolist()}
    members["ppt/slides/slide1.xml"] = laughs
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    with pytest.raises(LoaderError, match=r"member 'ppt/slides/slide1.xml' has a document type declaration"):
        load_file(tmp_path / "laughs.pptx", out.getvalue())


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("/abs/olute.csv", "olute.csv"),
        ("..", "attachment-3"),
        ("name\x00with\nnul.csv", "name_with_nul.csv"),
        (None, "attachment-3"),
    ],
)
def test_attachment_names_never_carry_a_path(given: str | None, kept: str) -> None:
    assert safe_name(given, 3) == kept


def test_attachments_beyond_the_limit_are_skipped_with_a_warning(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "Many files"
    msg.set_content("See the attached notes.")
    for i in range(4):
        msg.add_attachment(f"note {i}".encode(), maintype="text", subtype="plain", filename=f"n{i}.txt")
    docs = load_file(tmp_path / "many.eml", bytes(msg), limits=LoadLimits(max_attachments=2))
    assert [d.doc_id.rsplit("/", 1)[-1] for d in docs] == ["many.eml", "n0.txt", "n1.txt"]
    assert "attachments after the first 2 skipped (ingest.max_attachments)" in docs[0].metadata["parse_warnings"]


def _with_member(raw: bytes, name: str, data: bytes) -> bytes:
    """The zip ``raw`` with member ``name`` replaced by ``data``."""
    with zipfile.ZipFile(io.BytesIO(raw)) as src:
        members = {i.filename: src.read(i.filename) for i in src.infolist()}
    members[name] = data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for member, content in members.items():
            dst.writestr(member, content)
    return out.getvalue()


def test_an_xlsx_declaring_the_largest_sheet_is_read_as_wide_as_its_cells(tmp_path: Path) -> None:
    # openpyxl pads every row to the declared dimension: 1,048,576 rows of 16,384 cells from a few bytes.
    build_xlsx(tmp_path / "ok.xlsx")
    raw = (tmp_path / "ok.xlsx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(raw)) as src:
        sheet = src.read("xl/worksheets/sheet1.xml")
    crafted = _with_member(raw, "xl/worksheets/sheet1.xml", sheet.replace(b'ref="A1:C3"', b'ref="A1:XFD1048576"'))
    assert crafted != raw
    doc = load_file(tmp_path / "dim.xlsx", crafted)[0]
    assert [s.page for s in doc.sections if s.heading_path == ("sheet Warehouses",)] == [2, 3]
    wide = _with_member(raw, "xl/worksheets/sheet1.xml", sheet.replace(b"</row>", b'<c r="XFD1"><v>1</v></c></row>', 1))
    with pytest.raises(
        LoaderError, match=r"row 1 has 16,384 columns, over the limit of 1,024 \(ingest.max_table_columns\)"
    ):
        load_file(tmp_path / "wide.xlsx", wide)


@pytest.mark.slow
def test_the_parsing_report_is_listed_per_document(kb) -> None:
    from typer.testing import CliRunner

    from groundwork.cli import app

    knowledge, _, docs = kb
    report = {Path(d.doc_id).name: d.parse for d in knowledge.documents()}
    assert report["deck.pptx"] | {"chars": 0} == {
        "loader": "pptx",
        "units": 2,
        "unit": "slides",
        "chars": 0,
        "ocr_share": 0.0,
        "warnings": "",
    }
    assert report["deck.pptx"]["chars"] > 100
    assert (report["book.xlsx"]["units"], report["book.xlsx"]["unit"]) == (2, "sheets")
    assert report["offsite.eml"]["warnings"] == "attachment tool.exe: type '.exe' not indexed"
    if HAS_TESSERACT:
        assert report["memo.pdf"]["ocr_share"] == 1.0 and report["memo.pdf"]["units"] == 2
    listed = CliRunner().invoke(app, ["--kb", str(docs.parent / "kb"), "documents", "--json"], catch_exceptions=False)
    rows = {Path(d["doc_id"]).name: d for d in json.loads(listed.stdout)}
    assert rows["deck.pptx"]["parse"]["unit"] == "slides" and rows["book.xlsx"]["chunks"] == 5


@pytest.mark.slow
def test_the_postgres_store_returns_the_parsing_report_too(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    (tmp_path / "d").mkdir()
    build_pptx(tmp_path / "d" / "deck.pptx")
    settings = load_settings(kb=tmp_path / "kb", store="postgres", pg_dsn=pg_dsn, **{"postgres.schema_name": pg_schema})
    knowledge = KnowledgeBase(settings=settings)
    assert knowledge.ingest([tmp_path / "d"]).added == 1
    (info,) = knowledge.documents()
    assert (info.parse["loader"], info.parse["units"], info.parse["unit"]) == ("pptx", 2, "slides")
    assert info.parse["chars"] > 100 and info.parse["ocr_share"] == 0.0


def test_an_image_bomb_is_refused_from_its_header_and_a_broken_image_is_named(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("L", (10, 10), 255).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    # IHDR (bytes 8-32 of every PNG: length, type, width, height, ...): claim 7,000 x 7,000 pixels.
    png[16:24] = (7000).to_bytes(4, "big") * 2
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")
    with pytest.raises(
        LoaderError, match=r"7000 x 7000 pixels, over the 40,000,000-pixel limit \(ingest.ocr_max_pixels\)"
    ):
        load_file(tmp_path / "bomb.png", bytes(png))
    with pytest.raises(LoaderError, match="not a readable PNG, JPEG or TIFF image"):
        load_file(tmp_path / "truncated.png", b"\x89PNG\r\n\x1a\n")
