"""Real files of every supported format, written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path


def write_markdown(path: Path) -> Path:
    path.write_text(
        "# Returns\n\nReturns are free within 30 days.\n\n## How to start a return\n\n"
        "Open your order and choose Return items.\n\n"
        "## Refunds\n\nRefunds reach your card in 5-7 days.\n"
    )
    return path


def write_text(path: Path) -> Path:
    path.write_text("Gift wrapping costs two euros per parcel.\n\nWrapping paper is recycled.\n")
    return path


def write_html(path: Path) -> Path:
    path.write_text(
        "<html><head><title>Warranty</title><script>var tracking = 1;</script></head><body>"
        "<nav>Home | Shop</nav><h1>Warranty</h1><p>Every espresso machine has a warranty.</p>"
        "<h2>Coverage</h2><p>The warranty covers the pump and the boiler for three years.</p>"
        "<h2>Claims</h2><p>Send the claim form with your receipt.</p></body></html>"
    )
    return path


def write_pdf(
    path: Path,
    pages: tuple[str, ...] = (
        "The loyalty programme gives one point per euro.",
        "Points expire after eighteen months.",
    ),
) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Loyalty programme")
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Bicycle assembly", level=1)
    document.add_paragraph("City bicycles arrive ninety percent assembled.")
    document.add_heading("Tools", level=2)
    document.add_paragraph("Attach the pedals with the included 15 mm spanner.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Assembly time", "twenty minutes"
    document.save(str(path))
    return path


def write_faq_csv(path: Path) -> Path:
    path.write_text(
        'question,answer\n"Do you ship to Norway?","Yes, delivery to Norway takes five days."\n'
        '"Can I pay by invoice?","Business customers can pay by invoice within 30 days."\n'
    )
    return path


def write_faq_jsonl(path: Path) -> Path:
    rows = [
        {
            "question": "Is there a student discount?",
            "answer": "Students get ten percent off with a valid card.",
        },
        {"question": "Do gift cards expire?", "answer": "Gift cards are valid for three years."},
        {
            "question": "Can I change my delivery address?",
            "answer": "Until the parcel ships, in your account.",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def write_all(folder: Path) -> Path:
    """One file of each format, some in a sub-folder."""
    (folder / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
    write_markdown(folder / "returns.md")
    write_text(folder / "gift-wrapping.txt")
    write_html(folder / "sub" / "warranty.html")
    write_pdf(folder / "sub" / "loyalty.pdf")
    write_docx(folder / "sub" / "deeper" / "bicycle.docx")
    write_faq_csv(folder / "faq.csv")
    write_faq_jsonl(folder / "sub" / "more-faq.jsonl")
    return folder
