"""Files built to exhaust memory: zip bombs, crafted zip headers, huge text. Each test builds its own
file (none is stored in the repository) and checks that the file fails alone, with a reason that names
the limit, while the rest of the run is indexed and memory stays bounded.

Memory bound: the CLI and the server must stay under PEAK_RSS_BOUND (1.5 GB) while ingesting a DOCX
that inflates to about 1 GB; the embedding model and its runtime alone take about 0.5 GB. Before the
archive check, the same file took the CLI to 11.7 GB and the server past 8 GB.
"""

from __future__ import annotations

import functools
import io
import json
import os
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import docx
import httpx
import pytest

from groundwork.errors import LoaderError
from groundwork.ingest.archives import ArchiveLimits
from groundwork.ingest.loaders import LoadLimits, load_file
from groundwork.ingest.records import RecordOptions
from tests.conftest import make_pdf, write
from tests.serve.server import GW, Server, wait_job

MB = 10**6
PEAK_RSS_BOUND = 1_500 * MB  # bytes
BOMB_XML_BYTES = 1_000 * MB  # what the bomb's word/document.xml inflates to
PARAGRAPH = b"<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"
W_NS = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOC_HEAD = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document ' + W_NS + b"><w:body>"
DOC_TAIL = b"</w:body></w:document>"
HANDBOOK = "The travel policy reimburses economy rail fares for every business trip."
NEW_NOTE = "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n"


# -- building files -----------------------------------------------------------------------------------


@functools.cache
def _template_members() -> list[tuple[zipfile.ZipInfo, bytes]]:
    """Every member of an empty python-docx document except word/document.xml."""
    buf = io.BytesIO()
    docx.Document().save(buf)
    with zipfile.ZipFile(buf) as src:
        return [(i, src.read(i.filename)) for i in src.infolist() if i.filename != "word/document.xml"]


def build_docx(
    path: Path,
    body: bytes = b"",
    body_blocks: tuple[bytes, int] = (b"", 0),
    extra: dict[str, bytes] | None = None,
    method: int = zipfile.ZIP_DEFLATED,
    document: bytes | None = None,
) -> Path:
    """A valid DOCX whose document.xml body is ``body`` then ``body_blocks`` = (block, times), written
    block by block (streamed: a 1 GB body never exists in memory), or is ``document``; plus ``extra`` members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", method) as out:
        for info, data in _template_members():
            out.writestr(info.filename, data)
        with out.open("word/document.xml", "w", force_zip64=True) as f:
            if document is not None:
                f.write(document)
            else:
                f.write(DOC_HEAD + body)
                block, times = body_blocks
                for _ in range(times):
                    f.write(block)
                f.write(DOC_TAIL)
        for name, data in (extra or {}).items():
            out.writestr(name, data)
    return path


def paragraphs(*texts: str) -> bytes:
    return b"".join(b"<w:p><w:r><w:t>" + t.encode() + b"</w:t></w:r></w:p>" for t in texts)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~1 MB DOCX whose word/document.xml inflates to ~1 GB of <w:p> paragraphs."""
    block = PARAGRAPH * (MB // len(PARAGRAPH))
    path = build_docx(tmp_path_factory.mktemp("bomb") / "bomb.docx", body_blocks=(block, BOMB_XML_BYTES // len(block)))
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("word/document.xml").file_size > 0.95 * BOMB_XML_BYTES
    assert path.stat().st_size < 5 * MB
    return path


def small_docx(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    d = docx.Document()
    d.add_heading("Handbook", level=1)
    d.add_paragraph(HANDBOOK)
    d.save(str(path))
    return path


def understate_size(path: Path, member: str, declared: int) -> None:
    """Rewrite the central-directory entry of ``member`` to declare ``declared`` bytes (and the CRC-32 of
    the first ``declared`` bytes, so that nothing but the size gives the lie away)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z, z.open(member) as f:
        prefix = f.read(declared)
    entry = raw.rindex(member.encode()) - 46  # APPNOTE 4.3.12: 46 fixed bytes, then the name
    assert raw[entry : entry + 4] == b"PK\x01\x02"
    struct.pack_into("<I", raw, entry + 16, zlib.crc32(prefix))  # CRC-32
    struct.pack_into("<I", raw, entry + 24, declared)  # uncompressed size
    path.write_bytes(bytes(raw))


# -- measuring a process's memory ---------------------------------------------------------------------


def vm_hwm(pid: int) -> int:
    """The kernel's high-water mark of the process's resident memory (VmHWM), in bytes; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((ln for ln in status.splitlines() if ln.startswith("VmHWM:")), None)
    return int(line.split()[1]) * 1024 if line else 0


class Watchdog:
    """Samples the peak resident memory (VmHWM) of ``pid`` every 0.1 s into ``peak``, and kills the
    process once it passes ``kill_above`` bytes, so that a regression fails the test instead of
    exhausting the machine."""

    def __init__(self, pid: int, kill_above: int) -> None:
        self.pid, self.kill_above, self.killed, self.peak = pid, kill_above, False, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, vm_hwm(self.pid))
            if self.peak > self.kill_above:
                self.killed = True
                os.kill(self.pid, 9)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> tuple[int, str, str, int]:
    """Run the groundwork CLI: (exit code, stdout, stderr, peak resident memory in bytes: VmHWM sampled
    every 0.1 s until it exits; the peak of an ingest comes long before its last 0.1 s)."""
    proc = subprocess.Popen(
        [GW, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    dog = Watchdog(proc.pid, 2 * PEAK_RSS_BOUND)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        dog.stop()
        if proc.poll() is None:  # timed out: leave nothing running
            proc.kill()
            proc.wait()
    assert not dog.killed, f"killed: peak resident memory passed {dog.kill_above / MB:.0f} MB"
    return proc.returncode, stdout, stderr, dog.peak


def rss_growth(setup: str, call: str, *argv: str) -> tuple[str, int]:
    """Run ``setup`` then ``call`` (Python source) in a fresh interpreter: (what ``call`` printed, how far
    the peak resident memory (VmHWM) grew during ``call``, in bytes). VmHWM, not ru_maxrss: a child
    inherits its parent's ru_maxrss across fork and exec, so an earlier peak of pytest would hide the growth."""
    hwm = "int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM')).split()[1]) * 1024"
    code = f"import sys\n{setup}\nbefore = {hwm}\n{call}\nprint({hwm} - before)\n"
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    *printed, growth = out.stdout.strip().splitlines()
    return "\n".join(printed), int(growth)


LOAD = (
    "from pathlib import Path\n"
    "from groundwork.errors import LoaderError\n"
    "from groundwork.ingest.loaders import load_file\n"
    "path = Path(sys.argv[1]); raw = path.read_bytes()"
)
TRY_LOAD = "try:\n    load_file(path, raw)\nexcept LoaderError as exc:\n    print(exc.reason)"


def ingest_json(kb: Path, folder: Path, env: dict[str, str] | None = None) -> tuple[int, dict, int]:
    rc, stdout, stderr, peak = run_cli(["--kb", str(kb), "ingest", str(folder), "--json"], env)
    assert stdout.strip(), stderr
    return rc, json.loads(stdout), peak


def failed_reasons(report: dict) -> dict[str, str]:
    return {Path(f["path"]).name: f["reason"] for f in report["failed"]}


# -- the attacker's report: a DOCX bomb through the CLI and the server --------------------------------


@pytest.mark.slow
def test_cli_docx_bomb_fails_alone_with_bounded_memory(bomb: Path, tmp_path: Path) -> None:
    folder, kb = tmp_path / "docs", tmp_path / "kb"
    small_docx(folder / "handbook.docx")
    rc, report, _ = ingest_json(kb, folder)
    assert rc == 0 and report["added"] == 1

    # The attacker replaces the indexed handbook with the bomb and adds a good note beside it.
    (folder / "handbook.docx").write_bytes(bomb.read_bytes())
    write(folder / "canteen.md", NEW_NOTE)
    rc, report, peak = ingest_json(kb, folder)

    print(f"CLI peak RSS with the bomb: {peak / MB:.0f} MB")
    assert rc == 1
    assert "ingest.max_unzipped_mb" in failed_reasons(report)["handbook.docx"]
    assert report["added"] == 1 and report["deleted"] == 0  # the note is indexed, the old handbook kept
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak / MB:.0f} MB"
    rc, stdout, stderr, _ = run_cli(["--kb", str(kb), "search", "rail fares for business trips", "--json"])
    assert rc == 0, f"search exited {rc}: {stderr[-2000:]}"
    assert any(HANDBOOK in h["text"] for h in json.loads(stdout))


@pytest.mark.slow
def test_server_docx_bomb_upload_fails_with_bounded_memory(bomb: Path, tmp_path: Path) -> None:
    srv = Server(tmp_path / "kb", no_auth=True).start()
    assert srv.proc is not None
    dog = Watchdog(srv.proc.pid, 2 * PEAK_RSS_BOUND)
    try:
        with srv.client(None) as client:
            files = [
                ("files", ("bomb.docx", bomb.read_bytes(), "application/octet-stream")),
                ("files", ("canteen.md", NEW_NOTE.encode(), "text/markdown")),
            ]
            r = client.post("/v1/documents", files=files)
            assert r.status_code == 202, r.text
            job = wait_job(client, r.json()["job_id"], timeout=300)
            peak = vm_hwm(srv.proc.pid)
            print(f"server peak RSS with the bomb: {peak / MB:.0f} MB")
            results = {x["file"]: x for x in job["results"]}
            assert results["bomb.docx"]["status"] == "failed"
            assert "ingest.max_unzipped_mb" in results["bomb.docx"]["reason"]
            assert results["canteen.md"]["status"] == "added"
            assert 0 < peak < PEAK_RSS_BOUND, f"server peak RSS {peak / MB:.0f} MB"
            hits = client.post("/v1/search", json={"query": "when is lunch served", "top_k": 3}).json()
            assert any("noon" in h["text"] for h in hits)
    except httpx.HTTPError:
        raise AssertionError(f"server gone (killed by the watchdog: {dog.killed})") from None
    finally:
        dog.stop()
        srv.stop()


# -- text caps -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_text_cap_fails_a_large_text_file_alone(tmp_path: Path) -> None:
    folder, kb = tmp_path / "docs", tmp_path / "kb"
    write(folder / "huge.txt", "All work and no play makes Jack a dull boy.\n" * 5_000)  # 220,000 characters
    write(folder / "canteen.md", NEW_NOTE)
    rc, report, _ = ingest_json(kb, folder, env={"GROUNDWORK_INGEST__MAX_TEXT_CHARS": "100000"})
    assert rc == 1 and report["added"] == 1
    reason = failed_reasons(report)["huge.txt"]
    assert "100,000 characters" in reason and "ingest.max_text_chars" in reason


def test_text_cap_stops_extracting_as_soon_as_it_is_passed(tmp_path: Path) -> None:
    # Invalid UTF-8 after the first few MB: a loader that decoded the whole file before counting would
    # report that; one that stops at the cap never reaches it.
    p = write(tmp_path / "long.txt", b"word " * 1_000_000 + b"\xff tail")
    with pytest.raises(LoaderError, match=r"ingest\.max_text_chars"):
        load_file(p, p.read_bytes(), limits=LoadLimits(max_text_chars=100_000))
    with pytest.raises(LoaderError, match="not valid UTF-8"):
        load_file(p, p.read_bytes(), limits=LoadLimits(max_text_chars=10_000_000))


def _html(path: Path, text: str) -> Path:
    return write(path, f"<html><body><article><h1>Report</h1><p>{text}</p></article></body></html>")


@pytest.mark.parametrize(
    "make",
    [
        lambda p, t: write(p / "a.md", f"# Title\n\n{t}\n"),
        lambda p, t: write(p / "a.txt", t),
        lambda p, t: _html(p / "a.html", t),
        lambda p, t: make_pdf(p / "a.pdf", [t[: len(t) // 2], t[len(t) // 2 :]]),
        lambda p, t: build_docx(p / "a.docx", body=paragraphs(t[: len(t) // 2], t[len(t) // 2 :])),
    ],
    ids=["markdown", "text", "html", "pdf", "docx"],
)
def test_every_loader_enforces_the_text_cap(tmp_path: Path, make) -> None:
    text = "Employees receive twenty-five days of paid annual leave every calendar year.\n" * 40  # 3,080 chars
    path = make(tmp_path, text)
    assert load_file(path, path.read_bytes(), limits=LoadLimits(max_text_chars=5_000))
    with pytest.raises(LoaderError, match=r"more than 2,000 characters .*ingest\.max_text_chars"):
        load_file(path, path.read_bytes(), limits=LoadLimits(max_text_chars=2_000))


def test_text_cap_on_records_fails_the_long_record_only(tmp_path: Path) -> None:
    rows = [{"id": "short", "text": "A short record."}, {"id": "long", "text": "x" * 3_000}]
    p = write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in rows))
    docs = load_file(p, p.read_bytes(), RecordOptions(id_field="id"), LoadLimits(max_text_chars=2_000))
    assert [d.doc_id for d in docs] == ["short"]
    [problem] = docs.problems
    assert problem.doc_id == "long" and "ingest.max_text_chars" in problem.reason


# -- archive checks on small crafted zips -------------------------------------------------------------


def load_docx(path: Path, **limits) -> list:
    return load_file(path, path.read_bytes(), limits=LoadLimits(archive=ArchiveLimits(**limits)))


def test_compression_ratio_over_the_limit_is_refused(tmp_path: Path) -> None:
    # 5 MB of zeros in a 5 kB member: a ratio near 1,000, far within the size limit.
    path = build_docx(tmp_path / "r.docx", body=paragraphs(HANDBOOK), extra={"word/media/blank.bin": bytes(5 * MB)})
    assert path.stat().st_size < 100_000
    with pytest.raises(LoaderError, match=r"'word/media/blank\.bin' is compressed [\d,]+:1.*ingest\.max_zip_ratio"):
        load_docx(path)
    assert load_docx(path, max_ratio=2_000)  # the same file within a raised limit loads


def test_small_well_compressed_members_are_not_ratio_checked(tmp_path: Path) -> None:
    path = build_docx(tmp_path / "s.docx", body=paragraphs(HANDBOOK), extra={"customXml/zeros.xml": bytes(500_000)})
    assert load_docx(path)


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    extra = {f"extra/item{i}.xml": b"<a/>" for i in range(10_001)}
    path = build_docx(tmp_path / "m.docx", body=paragraphs(HANDBOOK), extra=extra)
    with pytest.raises(LoaderError, match=r"more than 10,000 members.*ingest\.max_zip_members"):
        load_docx(path)
    assert load_docx(path, max_members=20_000)


def test_total_inflated_size_over_the_limit_is_refused(tmp_path: Path) -> None:
    block = paragraphs(*[f"Paragraph {i} of a long report." for i in range(1000)])
    path = build_docx(tmp_path / "t.docx", body_blocks=(block, 30))  # 1.7 MB of paragraphs, 2.6 MB in all
    with pytest.raises(LoaderError, match=r"more than 2 MB.*ingest\.max_unzipped_mb"):
        load_docx(path, max_unzipped_bytes=2 * MB)
    assert load_docx(path, max_unzipped_bytes=3 * MB)


def test_too_many_xml_nodes_are_refused(tmp_path: Path) -> None:
    # 200,000 empty elements: 800 kB of XML, under every size limit, but a DOM of 200,000 nodes.
    path = build_docx(tmp_path / "n.docx", body=paragraphs(HANDBOOK) + b"<a/>" * 200_000)
    with pytest.raises(LoaderError, match=r"more than 100,000 elements.*ingest\.max_xml_nodes"):
        load_docx(path, max_xml_nodes=100_000)
    assert load_docx(path, max_xml_nodes=300_000)


def test_nested_archive_is_refused_but_an_embedded_package_is_not(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("a.txt", "inner")
    hidden = build_docx(
        tmp_path / "n.docx", body=paragraphs(HANDBOOK), extra={"word/media/image1.png": inner.getvalue()}
    )
    with pytest.raises(LoaderError, match=r"'word/media/image1\.png' is itself an archive \(zip\)"):
        load_docx(hidden)
    chart = build_docx(
        tmp_path / "c.docx",
        body=paragraphs(HANDBOOK),
        extra={"word/embeddings/Microsoft_Excel_Worksheet.xlsx": inner.getvalue()},
    )
    assert load_docx(chart)


def test_compression_methods_other_than_deflate_are_refused(tmp_path: Path) -> None:
    # zipfile inflates bzip2 and LZMA members without an output bound; OOXML allows stored and deflated only.
    path = build_docx(tmp_path / "b.docx", body=paragraphs(HANDBOOK), method=zipfile.ZIP_BZIP2)
    with pytest.raises(LoaderError, match="compression method 12"):
        load_docx(path)
    assert load_docx(build_docx(tmp_path / "s.docx", body=paragraphs(HANDBOOK), method=zipfile.ZIP_STORED))


def test_not_a_zip_and_truncated_zip_fail_cleanly(tmp_path: Path) -> None:
    good = build_docx(tmp_path / "g.docx", body=paragraphs(HANDBOOK))
    cut = write(tmp_path / "cut.docx", good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(LoaderError, match="not a readable DOCX"):
        load_docx(cut)


def test_archive_failures_fail_the_file_only(make_kb, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    build_docx(folder / "ratio.docx", body=paragraphs(HANDBOOK), extra={"x.bin": bytes(5 * MB)})
    extra = {f"extra/item{i}.xml": b"<a/>" for i in range(10_001)}
    build_docx(folder / "members.docx", body=paragraphs(HANDBOOK), extra=extra)
    write(folder / "canteen.md", NEW_NOTE)
    report = make_kb().ingest([folder])
    reasons = {Path(f.path).name: f.reason for f in report.failed}
    assert "ingest.max_zip_ratio" in reasons["ratio.docx"] and "ingest.max_zip_members" in reasons["members.docx"]
    assert report.added == 1


# -- the claim that declared sizes bound what zipfile reads --------------------------------------------


def _liar(tmp_path: Path, real: int, declared: int) -> Path:
    """A DOCX whose document.xml inflates to ``real`` bytes while its header declares ``declared``."""
    block = PARAGRAPH * 10_000
    path = build_docx(tmp_path / "liar.docx", body_blocks=(block, real // len(block)))
    understate_size(path, "word/document.xml", declared)
    return path


def test_zipfile_streaming_reads_stop_at_the_declared_size(tmp_path: Path) -> None:
    path = _liar(tmp_path, real=20 * MB, declared=100_000)
    with zipfile.ZipFile(path) as z, z.open("word/document.xml") as f:
        got = 0
        while chunk := f.read(64 * 1024):
            got += len(chunk)
    # The claim holds for bounded reads: nothing past the declared size comes out; and with a CRC
    # forged for that prefix, not even a CRC error says that the member was cut short.
    assert got == 100_000


def test_zipfile_whole_member_read_inflates_the_real_size_first(tmp_path: Path) -> None:
    # ... but ZipFile.read() (what python-docx calls) inflates the whole stream in one call before it
    # truncates to the declared size: memory follows the real size, not the declared one.
    path = _liar(tmp_path, real=100 * MB, declared=100_000)
    setup = "import zipfile\nz = zipfile.ZipFile(sys.argv[1])"
    printed, grew = rss_growth(setup, "print(len(z.read('word/document.xml')))", str(path))
    assert printed == "100000" and grew > 90 * MB, f"{grew / MB:.0f} MB"


def test_a_member_larger_than_its_header_declares_is_refused(tmp_path: Path) -> None:
    path = _liar(tmp_path, real=100 * MB, declared=100_000)
    reason, grew = rss_growth(LOAD, TRY_LOAD, str(path))
    assert "'word/document.xml' inflates to more than its declared 100,000 bytes" in reason
    assert grew < 50 * MB, f"{grew / MB:.0f} MB"


# -- XML entities --------------------------------------------------------------------------------------


def _laughs(levels: int) -> bytes:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol;" if i == 1 else f"&lol{i - 1};") * 10}">' for i in range(1, levels + 1)
    )
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE w:document [{entities}]>'
        f"<w:document {W_NS.decode()}><w:body><w:p><w:r><w:t>a &lol{levels}; b</w:t></w:r></w:p></w:body></w:document>"
    ).encode()


def test_billion_laughs_is_not_expanded(tmp_path: Path) -> None:
    """python-docx parses with resolve_entities=False (docx/oxml/parser.py) and libxml2 refuses entity
    amplification: nine levels (10^9 "lol"s) fail at once, three levels stay unexpanded."""
    nine = build_docx(tmp_path / "l9.docx", document=_laughs(9))
    reason, grew = rss_growth(LOAD, TRY_LOAD, str(nine))
    assert "not a readable DOCX" in reason and "amplification" in reason
    assert grew < 20 * MB, f"{grew / MB:.0f} MB"
    [doc] = load_docx(build_docx(tmp_path / "l3.docx", document=_laughs(3)))
    assert "lollol" not in doc.text and len(doc.text) < 100


def test_check_package_holds_one_chunk_not_the_member(tmp_path: Path) -> None:
    # 40 MB of paragraphs: the check inflates and parses them all without holding them.
    block = PARAGRAPH * 10_000
    path = build_docx(tmp_path / "big.docx", body_blocks=(block, 40 * MB // len(block)))
    setup = "from groundwork.ingest.archives import ArchiveLimits, check_package\nraw = open(sys.argv[1], 'rb').read()"
    call = "check_package('big.docx', raw, ArchiveLimits(max_ratio=10_000, max_xml_nodes=10**9))"
    _, grew = rss_growth(setup, call, str(path))
    assert grew < 20 * MB, f"{grew / MB:.0f} MB"
