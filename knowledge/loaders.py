"""Turn files and folders into text documents with a source and a title."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from knowledge.errors import UnreadableDocument

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".rst"})


@dataclass(frozen=True)
class SourceDocument:
    """A document's text and where it came from."""

    source: str
    title: str
    text: str
    kind: str


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every readable file under the given files and folders, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and _wanted(p))
        elif path.is_file():
            yield path
        else:
            raise UnreadableDocument(f"{path}: no such file or folder")


def _wanted(path: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.parts[-1:])
    return not hidden and path.suffix.lower() in TEXT_SUFFIXES


def load_document(path: Path) -> SourceDocument:
    """Read one text or Markdown file; the title is its first heading, else its file name."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        raise UnreadableDocument(f"{path}: unsupported file type {path.suffix or '(none)'}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableDocument(f"{path}: {err}") from err
    kind = "markdown" if path.suffix.lower() in {".md", ".markdown"} else "text"
    return SourceDocument(source=str(path.resolve()), title=_title(text, path), text=text, kind=kind)


def _title(text: str, path: Path) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ").replace("_", " ")
