from pathlib import Path

import pytest

from knowledge.chunking import Chunker
from knowledge.errors import UnreadableDocument
from knowledge.loaders import iter_files, load_document
from tests.knowledge import files

pytestmark = pytest.mark.unit


def _passages(path: Path) -> list:
    return Chunker().split(load_document(path))


def test_html_sections_keep_their_heading_path_and_drop_scripts(tmp_path: Path) -> None:
    document = load_document(files.write_html(tmp_path / "w.html"))
    passages = Chunker().split(document)
    assert document.title == "Warranty" and document.kind == "html"
    assert [p.heading for p in passages] == ["Warranty", "Warranty > Coverage", "Warranty > Claims"]
    assert "pump and the boiler" in passages[1].text
    assert all("tracking" not in p.text and "Home | Shop" not in p.text for p in passages)


def test_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    document = load_document(files.write_pdf(tmp_path / "l.pdf"))
    passages = Chunker().split(document)
    assert document.title == "Loyalty programme"
    assert [p.heading for p in passages] == [
        "Loyalty programme > page 1",
        "Loyalty programme > page 2",
    ]
    assert "eighteen months" in passages[1].text


def test_docx_headings_become_the_heading_path(tmp_path: Path) -> None:
    passages = _passages(files.write_docx(tmp_path / "b.docx"))
    assert passages[0].heading == "Bicycle assembly"
    assert any(
        p.heading == "Bicycle assembly > Tools" and "15 mm spanner" in p.text for p in passages
    )
    assert any("twenty minutes" in p.text for p in passages)


@pytest.mark.parametrize("writer", [files.write_faq_csv, files.write_faq_jsonl])
def test_faq_files_give_one_chunk_per_pair(tmp_path: Path, writer) -> None:  # noqa: ANN001
    path = writer(tmp_path / ("faq.csv" if writer is files.write_faq_csv else "faq.jsonl"))
    document = load_document(path)
    passages = Chunker(chunk_size=100, overlap=10).split(document)
    assert len(passages) == len(document.sections) >= 2
    assert all(p.text.startswith("Q: ") and "\nA: " in p.text for p in passages)
    assert passages[0].heading == document.sections[0].heading and passages[0].heading.endswith("?")


def test_markdown_and_text(tmp_path: Path) -> None:
    assert [p.heading for p in _passages(files.write_markdown(tmp_path / "r.md"))][
        -1
    ] == "Returns > Refunds"
    assert _passages(files.write_text(tmp_path / "gift-wrapping.txt"))[0].heading == "gift wrapping"


def test_folders_are_read_recursively_skipping_hidden_and_unknown(tmp_path: Path) -> None:
    files.write_all(tmp_path / "docs")
    (tmp_path / "docs" / ".git").mkdir()
    (tmp_path / "docs" / ".git" / "notes.md").write_text("# hidden")
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    found = {p.name for p in iter_files([tmp_path / "docs"])}
    assert found == {
        "returns.md",
        "gift-wrapping.txt",
        "warranty.html",
        "loyalty.pdf",
        "bicycle.docx",
        "faq.csv",
        "more-faq.jsonl",
    }


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "broken.pdf"),
        ("broken.docx", b"PK\x03\x04 not a zip", "broken.docx"),
        ("no-answer.csv", b"question,reply\nWhy?,Because\n", "question and an answer"),
        ("bad.jsonl", b'{"question": "a", "answer": "b"}\n{not json\n', "line 2"),
        ("latin1.md", b"caf\xe9 cr\xe8me", "UTF-8"),
        ("empty.html", b"<html><body><script>x()</script></body></html>", "no text"),
    ],
)
def test_unreadable_files_are_a_clear_error(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UnreadableDocument, match=reason):
        load_document(tmp_path / name)
