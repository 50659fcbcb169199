"""Split documents into passages that keep their heading path, with LangChain's splitters.

Markdown (and DOCX, loaded as Markdown) by headers, HTML by h1-h3 sections, PDF page by page,
FAQ files one passage per question/answer pair; long sections are then cut by characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from langchain_text_splitters import (
    HTMLHeaderTextSplitter,
    MarkdownHeaderTextSplitter,
    RecursiveCharacterTextSplitter,
)

from knowledge.loaders import Section, SourceDocument

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
_HTML_HEADERS = [("h1", "h1"), ("h2", "h2"), ("h3", "h3")]
_KEYS = [key for _, key in _HEADERS]


@dataclass(frozen=True)
class Passage:
    """A chunk of a document before it is stored: its text, heading path and position."""

    text: str
    heading: str
    position: int


class Chunker:
    """Structure-aware splitting: sections first, then characters within a section.

    >>> Chunker(chunk_size=600, overlap=80).split(doc)[0].heading
    'Returns > How to start a return'
    """

    def __init__(self, *, chunk_size: int = 600, overlap: int = 80) -> None:
        self.chunk_size, self.overlap = chunk_size, min(overlap, chunk_size // 2)
        self._markdown = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=False)
        self._html = HTMLHeaderTextSplitter(_HTML_HEADERS)
        self._characters = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=self.overlap
        )

    @property
    def fingerprint(self) -> str:
        """Part of every content hash, so changing the chunking re-ingests files."""
        return f"chunk={self.chunk_size}/{self.overlap}"

    def split(self, document: SourceDocument) -> list[Passage]:
        if document.kind == "faq":
            return [Passage(s.text, s.heading, n) for n, s in enumerate(document.sections)]
        return self._cut(self._sections(document), document.title)

    def _sections(self, document: SourceDocument) -> list[Section]:
        if document.sections:
            return list(document.sections)
        if document.kind == "markdown":
            parts = self._markdown.split_text(document.text)
        elif document.kind == "html":
            parts = self._html.split_text(document.text)
        else:
            return [Section(document.title, document.text)]
        return _merge(
            (" > ".join(p.metadata[k] for k in _KEYS if k in p.metadata), p.page_content)
            for p in parts
        )

    def _cut(self, sections: list[Section], title: str) -> list[Passage]:
        passages: list[Passage] = []
        for section in sections:
            for piece in self._characters.split_text(section.text):
                if piece.strip():
                    passages.append(Passage(piece.strip(), section.heading or title, len(passages)))
        return passages


def _merge(parts: Iterable[tuple[str, str]]) -> list[Section]:
    """Join consecutive parts under the same heading (HTML splitting yields the header line
    alone)."""
    merged: list[Section] = []
    for heading, text in parts:
        if merged and merged[-1].heading == heading:
            merged[-1] = Section(heading, f"{merged[-1].text}\n{text}")
        else:
            merged.append(Section(heading, text))
    return merged
