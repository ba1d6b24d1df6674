"""Rebuild the handbook's DOCX and PDF (committed; run this only to change them):
``/work/main/.venv/bin/python eval/handbook/build.py``. Deterministic: fixed metadata, no timestamps
that change the text a loader reads."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def build_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "Remote work policy"
    d.add_heading("Remote work policy", level=1)
    d.add_heading("Remote days", level=2)
    d.add_paragraph(
        "Employees may work remotely up to three days per week, on days agreed with their manager. "
        "Team days in the office are set by each department."
    )
    d.add_heading("Connecting from home", level=2)
    d.add_paragraph(
        "Connect to the company network through the GlobalConnect VPN client and sign in with your "
        "hardware security key."
    )
    d.add_heading("Home office equipment", level=2)
    d.add_paragraph("The company pays a one-time allowance for home office equipment:")
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Item", "Allowance"
    for item, amount in (("Monitor", "150 EUR"), ("Office chair", "200 EUR"), ("Headset", "60 EUR")):
        cells = table.add_row().cells
        cells[0].text, cells[1].text = item, amount
    d.save(str(path))


def build_pdf(path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle("Remote access to internal systems")
    lines = [
        "Information security: remote access to internal systems",
        "",
        "Laptops must have the latest security updates and full-disk encryption turned on.",
        "Before you access internal systems from home, connect through the company VPN and confirm",
        "the sign-in with your hardware security key.",
        "Never store customer data on personal devices or personal cloud storage.",
        "Report a lost or stolen laptop to the security team within one hour.",
    ]
    y = 800
    for line in lines:
        c.drawString(50, y, line)
        y -= 16
    c.showPage()
    c.save()


if __name__ == "__main__":
    build_docx(HERE / "remote-work.docx")
    build_pdf(HERE / "security.pdf")
