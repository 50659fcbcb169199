import pytest

from knowledge.chunking import Chunker
from knowledge.loaders import SourceDocument

pytestmark = pytest.mark.unit

ARTICLE = """# Returns

Returns are free within 30 days.

## How to start a return

Open your order and choose Return items.

## Refunds

Refunds reach your card within 5-7 business days.
"""


def test_markdown_sections_keep_their_heading_path() -> None:
    passages = Chunker().split(SourceDocument("r.md", "Returns", ARTICLE, "markdown"))
    headings = [p.heading for p in passages]
    assert headings == ["Returns", "Returns > How to start a return", "Returns > Refunds"]
    assert "Return items" in passages[1].text
    assert [p.position for p in passages] == [0, 1, 2]


def test_long_sections_are_split_below_the_chunk_size() -> None:
    text = "# Big\n\n" + " ".join(f"sentence number {i} is here." for i in range(400))
    passages = Chunker(chunk_size=300, overlap=30).split(
        SourceDocument("b.md", "Big", text, "markdown")
    )
    assert len(passages) > 10
    assert all(len(p.text) <= 300 for p in passages)
    assert all(p.heading == "Big" for p in passages)


def test_plain_text_gets_the_title_as_heading() -> None:
    passages = Chunker().split(SourceDocument("n.txt", "notes", "Just a note.\n\nAnother.", "text"))
    assert passages and passages[0].heading == "notes"
