"""Peak memory of `groundwork ingest` on hostile DOCX files at the default ingest limits.

Each row builds one DOCX (streamed, never held in memory whole) and ingests it, after a small Markdown
note (so that the embedding model is loaded first), with the CLI in a fresh knowledge base, sampling the process's VmHWM (peak resident memory) every 0.05 s. The files sit just
under the default limits (ingest.max_xml_nodes 3,000,000, max_unzipped_mb 100, max_zip_ratio 100;
random content keeps the compression ratio low), so they reach python-docx: their rows show the most
memory a DOCX can cost within the limits. The bomb row is the attacker's ~1 GB file, refused before
parsing. The embedding model and its runtime take about 0.5 GB of every row.

Usage: python bench/ingest_limits.py [--rows paragraphs,attributes,...]
Writes bench/results/ingest_limits.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import docx

ROOT = Path(__file__).resolve().parents[1]
GW = str(Path(sys.executable).parent / "groundwork")
MB = 10**6
HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document '
    b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
)
TAIL = b"</w:body></w:document>"


def _rand(n: int) -> str:
    return os.urandom((n + 1) // 2).hex()[:n]


# name -> (what it is, one piece of XML given random text, XML nodes per piece as ingest counts them)
SHAPES = {
    "paragraphs": ("750k paragraphs of 8 characters", lambda: f"<w:p><w:r><w:t>{_rand(8)}</w:t></w:r></w:p>", 4),
    "empty-paragraphs": ("1.5M empty paragraphs with an rsid", lambda: f'<w:p w:rsidR="{_rand(8)}"/>', 2),
    "attributes": (
        "375k elements of 7 attributes",
        lambda: "<x " + " ".join(f'{a}="{_rand(3)}"' for a in "abcdefg") + "/>",
        8,
    ),
    "text-heavy": (
        "95 MB of paragraphs of 200 characters",
        lambda: f"<w:p><w:r><w:t>{_rand(200)}</w:t></w:r></w:p>",
        4,
    ),
}
NODE_BUDGET = 2_930_000  # just under the default ingest.max_xml_nodes, with the template's 59,510 nodes


def build(path: Path, shape: str) -> int:
    """Write the DOCX for ``shape``; returns the bytes of its document.xml."""
    template = io.BytesIO()
    docx.Document().save(template)
    _, piece, per = SHAPES[shape]
    pieces = NODE_BUDGET // per
    if shape == "text-heavy":
        pieces = 95 * MB // len(piece())
    written = 0
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                out.writestr(info.filename, src.read(info.filename))
        with out.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(HEAD)
            for start in range(0, pieces, 10_000):
                block = "".join(piece() for _ in range(min(10_000, pieces - start))).encode()
                f.write(block)
                written += len(block)
            f.write(TAIL)
    return written + len(HEAD) + len(TAIL)


def build_bomb(path: Path) -> int:
    template = io.BytesIO()
    docx.Document().save(template)
    para = b"<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"
    block = para * (MB // len(para))
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                out.writestr(info.filename, src.read(info.filename))
        with out.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(HEAD)
            for _ in range(1000):
                f.write(block)
            f.write(TAIL)
    return 1000 * len(block)


def vm_hwm(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(x.split()[1]) * 1024 for x in status.splitlines() if x.startswith("VmHWM:")), 0)


def ingest(folder: Path, kb: Path) -> tuple[dict, int, float]:
    """(the JSON report, peak VmHWM in bytes, seconds) of `groundwork ingest folder`."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [GW, "--kb", str(kb), "ingest", str(folder), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], vm_hwm(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    if not stdout.strip():
        raise SystemExit(f"ingest printed no report: {stderr[-2000:]}")
    return json.loads(stdout), peak[0], time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join([*SHAPES, "bomb"]), help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--out", default=str(ROOT / "bench/results/ingest_limits.json"))
    args = ap.parse_args()
    rows = []
    print(f"{'file':<18} {'file MB':>8} {'XML MB':>8} {'peak RSS MB':>12} {'s':>6}  outcome")
    for name in args.rows.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "docs"
            folder.mkdir()
            # A good note first: the model is loaded (as in a real run) before the DOCX is parsed.
            (folder / "0-note.md").write_text("# Canteen\n\nLunch is served from noon until two o'clock.\n")
            path = folder / f"{name}.docx"
            xml_bytes = build_bomb(path) if name == "bomb" else build(path, name)
            report, peak, seconds = ingest(folder, Path(tmp) / "kb")
            failed = report["failed"][0]["reason"] if report["failed"] else ""
            row = {
                "file": name,
                "what": "~1 GB of paragraphs" if name == "bomb" else SHAPES[name][0],
                "file_mb": round(path.stat().st_size / MB, 2),
                "xml_mb": round(xml_bytes / MB, 1),
                "peak_rss_mb": round(peak / MB),
                "seconds": round(seconds, 1),
                "outcome": f"failed: {failed}" if failed else "indexed",
            }
        rows.append(row)
        print(
            f"{row['file']:<18} {row['file_mb']:>8} {row['xml_mb']:>8} {row['peak_rss_mb']:>12} "
            f"{row['seconds']:>6}  {row['outcome'][:90]}"
        )
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
