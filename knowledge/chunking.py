"""Split documents into passages that keep their heading path, with LangChain's splitters."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from knowledge.loaders import SourceDocument

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]


@dataclass(frozen=True)
class Passage:
    """A chunk of a document before it is stored: its text, heading path and position."""

    text: str
    heading: str
    position: int


class Chunker:
    """Markdown-aware splitting: sections first, then characters within a section.

    >>> Chunker(chunk_size=600, overlap=80).split(doc)[0].heading
    'Returns > How to start a return'
    """

    def __init__(self, *, chunk_size: int = 600, overlap: int = 80) -> None:
        self._sections = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=False)
        self._characters = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=min(overlap, chunk_size // 2)
        )

    def split(self, document: SourceDocument) -> list[Passage]:
        sections = (
            self._sections.split_text(document.text)
            if document.kind == "markdown"
            else self._characters.create_documents([document.text])
        )
        passages: list[Passage] = []
        for section in sections:
            heading = " > ".join(section.metadata[k] for _, k in _HEADERS if k in section.metadata)
            for piece in self._characters.split_text(section.page_content):
                if piece.strip():
                    passages.append(Passage(piece.strip(), heading or document.title, len(passages)))
        return passages
