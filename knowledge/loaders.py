"""Turn files and folders into documents: Markdown, text, HTML, PDF, DOCX, FAQ (CSV / JSONL).

Each loader returns a SourceDocument; what structure it has travels in `kind` (for the chunker)
and, for PDF pages and FAQ pairs, in `sections`. Any failure becomes UnreadableDocument.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from knowledge.errors import UnreadableDocument

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
FAQ_SUFFIXES = frozenset({".csv", ".jsonl"})
SUPPORTED_SUFFIXES = (
    MARKDOWN_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES | FAQ_SUFFIXES | {".pdf", ".docx"}
)
LOADER_VERSION = "3"
"""Part of every content hash: bump it when a loader changes what it extracts, so files
re-ingest."""


@dataclass(frozen=True)
class Section:
    """A part of a document that keeps its own heading: a PDF page, an FAQ pair."""

    heading: str
    text: str


@dataclass(frozen=True)
class SourceDocument:
    """A document's text and where it came from; `sections` when the format gives them."""

    source: str
    title: str
    text: str
    kind: str
    sections: tuple[Section, ...] = ()
    url: str = ""
    """Where a reader can open it: a web page's URL, or a Markdown file's front-matter `url:`."""


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every supported, non-hidden file under the given files and folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and _wanted(p, path))
        elif path.is_file():
            yield path
        else:
            raise UnreadableDocument(f"{path}: no such file or folder")


def _wanted(path: Path, root: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.suffix.lower() in SUPPORTED_SUFFIXES


def load_document(path: Path, data: bytes | None = None) -> SourceDocument:
    """Read one file (its bytes may be given, already read to hash them)."""
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        raise UnreadableDocument(f"{path}: unsupported file type {suffix or '(none)'}")
    try:
        raw = path.read_bytes() if data is None else data
        document = loader(path, raw)
    except UnreadableDocument:
        raise
    except Exception as err:  # parsers raise many types on damaged files
        raise UnreadableDocument(f"{path}: {type(err).__name__}: {err}") from err
    if not document.text.strip() and not document.sections:
        raise UnreadableDocument(f"{path}: no text could be extracted")
    return document


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnreadableDocument(f"{path}: not UTF-8 text ({err})") from err


def _title(text: str, path: Path) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").replace("_", " ")


def _source(path: Path) -> str:
    return str(path.resolve())


def _load_markdown(path: Path, raw: bytes) -> SourceDocument:
    text = _decode(path, raw)
    meta, text = front_matter(text)
    title = str(meta.get("title") or "").strip() or _title(text, path)
    url = str(meta.get("url") or "").strip()
    url = url if url.startswith(("http://", "https://")) else ""
    return SourceDocument(_source(path), title, text, "markdown", url=url)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


def front_matter(text: str) -> tuple[dict[str, object], str]:
    """A Markdown file's YAML front matter (`url:`, `title:`) and the text after it; a block that
    is not a YAML mapping is left in the text."""
    import yaml

    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return {}, text
    return (meta, text[match.end() :]) if isinstance(meta, dict) else ({}, text)


def _load_text(path: Path, raw: bytes) -> SourceDocument:
    text = _decode(path, raw)
    return SourceDocument(_source(path), _title(text, path), text, "text")


def _load_html(path: Path, raw: bytes) -> SourceDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript", "template"]):
        tag.decompose()
    heading = soup.find(["h1", "title"])
    title = heading.get_text(" ", strip=True) if heading else _title("", path)
    body = soup.body or soup
    if not body.get_text(strip=True):
        raise UnreadableDocument(f"{path}: no text could be extracted")
    return SourceDocument(_source(path), title or _title("", path), str(body), "html")


def _load_pdf(path: Path, raw: bytes) -> SourceDocument:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(raw))
    pages = [
        (number, (page.extract_text() or "").strip()) for number, page in enumerate(reader.pages, 1)
    ]
    meta_title = (reader.metadata.title if reader.metadata else None) or ""
    title = meta_title.strip() or _title("", path)
    sections = tuple(Section(f"{title} > page {n}", text) for n, text in pages if text)
    return SourceDocument(
        _source(path), title, "\n\n".join(s.text for s in sections), "pdf", sections
    )


def _load_docx(path: Path, raw: bytes) -> SourceDocument:
    """Word headings become Markdown headings, so the Markdown splitter keeps the heading path."""
    import docx

    document = docx.Document(io.BytesIO(raw))
    lines: list[str] = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if not text:
            continue
        if style == "Title":
            lines.append(f"# {text}")
        elif style.startswith("Heading") and style[7:].strip().isdigit():
            lines.append(f"{'#' * min(int(style[7:]), 6)} {text}")
        else:
            lines.append(text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    text = "\n\n".join(lines)
    title = (document.core_properties.title or "").strip() or _title(text, path)
    return SourceDocument(_source(path), title, text, "markdown")


def _faq_pair(record: dict[str, object], path: Path, where: str) -> Section:
    lowered = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    question = str(lowered.get("question") or lowered.get("q") or "").strip()
    answer = str(lowered.get("answer") or lowered.get("a") or "").strip()
    if not question or not answer:
        raise UnreadableDocument(f"{path}: {where} needs a question and an answer")
    return Section(question, f"Q: {question}\nA: {answer}")


def _load_faq(path: Path, raw: bytes) -> SourceDocument:
    text = _decode(path, raw)
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        pairs = tuple(_faq_pair(row, path, f"row {n}") for n, row in enumerate(rows, 2))
    else:
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((n, json.loads(line)))
                except json.JSONDecodeError as err:
                    raise UnreadableDocument(f"{path}: line {n} is not JSON ({err.msg})") from err
        pairs = tuple(_faq_pair(r, path, f"line {n}") for n, r in records if isinstance(r, dict))
    if not pairs:
        raise UnreadableDocument(f"{path}: no question/answer pairs found")
    title = f"FAQ: {_title('', path)}"
    return SourceDocument(_source(path), title, "\n\n".join(p.text for p in pairs), "faq", pairs)


_LOADERS: dict[str, Callable[[Path, bytes], SourceDocument]] = {
    **{s: _load_markdown for s in MARKDOWN_SUFFIXES},
    **{s: _load_text for s in TEXT_SUFFIXES},
    **{s: _load_html for s in HTML_SUFFIXES},
    **{s: _load_faq for s in FAQ_SUFFIXES},
    ".pdf": _load_pdf,
    ".docx": _load_docx,
}
