"""OCR engines compared on pages of known text: character error rate (CER) and pages per second.

Renders ``--pages`` pages (default 20) of known English text with Pillow (DejaVu Sans, 22 px on a
1240 x 1754 page, A4 at 150 dpi; a slight Gaussian blur and a 0.4 degree skew make them look scanned),
then reads every page with each engine:

- rapidocr: ``rapidocr-onnxruntime`` (PP-OCRv4 models shipped in the wheel, ONNX Runtime on the CPU);
- tesseract: Debian ``tesseract-ocr`` 5 (LSTM, ``eng``) through ``pytesseract``.

CER = Levenshtein distance (insertions, deletions, substitutions; Levenshtein 1966) between the OCR
text and the known text, both with runs of whitespace collapsed to one space, over the known text's
length, summed over all pages. Pages/s is wall time of the engine call alone (images already rendered).

Usage: python bench/ocr.py [--pages 20]      Writes bench/results/ocr.json.
The machine is shared with other work: pages/s is comparable only between the engines of one run
(the JSON records the load measured during the run).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from machine import Load

ROOT = Path(__file__).resolve().parents[1]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def known_texts(pages: int, lines_per_page: int = 28, width: int = 72) -> list[str]:
    """Pages of plain prose taken from the project's docs (Markdown markup dropped), wrapped."""
    import textwrap

    words: list[str] = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for line in doc.read_text().splitlines():
            if line.startswith(("#", "|", "```", "    ")) or not line.strip():
                continue
            words += re.sub(r"[`*_\[\]()<>#|]", "", line).split()
    lines = textwrap.wrap(" ".join(words), width)
    need = pages * lines_per_page
    lines = (lines * (need // max(len(lines), 1) + 1))[:need]
    return ["\n".join(lines[i : i + lines_per_page]) for i in range(0, need, lines_per_page)]


def render(text: str, seed: int) -> Image.Image:
    """A page image of ``text``: black on white, slightly skewed and blurred like a scan."""
    page = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(page)
    draw.multiline_text((90, 110), text, fill=0, font=ImageFont.truetype(FONT, 22), spacing=18)
    angle = random.Random(seed).uniform(-0.4, 0.4)
    return page.rotate(angle, fillcolor=255, resample=Image.BICUBIC).filter(ImageFilter.GaussianBlur(0.6))


def levenshtein(a: str, b: str) -> int:
    """Edit distance, two rows of the dynamic programme (Wagner & Fischer 1974)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def norm(text: str) -> str:
    return " ".join(text.split())


def rapidocr_engine():
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def read(image: Image.Image) -> str:
        import numpy as np

        result, _ = engine(np.asarray(image.convert("RGB")))
        boxes = sorted(result or [], key=lambda r: (r[0][0][1], r[0][0][0]))
        return "\n".join(r[1] for r in boxes)

    return read


def tesseract_engine():
    import pytesseract

    def read(image: Image.Image) -> str:
        return pytesseract.image_to_string(image, lang="eng")

    return read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "bench/results/ocr.json"))
    args = ap.parse_args()
    texts = known_texts(args.pages)
    images = [render(t, i) for i, t in enumerate(texts)]
    load = Load()
    rows = []
    for name, make in (("rapidocr", rapidocr_engine), ("tesseract", tesseract_engine)):
        try:
            read = make()
        except ImportError as exc:  # rapidocr-onnxruntime is installed for this comparison only
            print(f"{name}: skipped ({exc}; pip install rapidocr-onnxruntime to compare)", file=sys.stderr)
            continue
        read(images[0])  # warm-up (model load) outside the timing
        started, errors, chars = time.perf_counter(), 0, 0
        outputs = []
        for i, img in enumerate(images, 1):
            outputs.append(read(img))
            print(f"  {name}: page {i}/{len(images)} at {time.perf_counter() - started:.1f} s", file=sys.stderr)
        seconds = time.perf_counter() - started
        for out, truth in zip(outputs, texts):
            errors += levenshtein(norm(out), norm(truth))
            chars += len(norm(truth))
        rows.append({"engine": name, "pages": len(images), "cer": errors / chars, "pages_per_s": len(images) / seconds})
    print(f"{'engine':<10} {'pages':>5} {'CER':>8} {'pages/s':>8}")
    for r in rows:
        print(f"{r['engine']:<10} {r['pages']:>5} {r['cer']:>8.4f} {r['pages_per_s']:>8.2f}")
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "load": load.report(),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
