"""The one renderer of an answer's citations, in the forms the channels need: Markdown (web chat,
export, state panel), plain text (terminal, `ask`) and JSON (REST, SSE).

A source's title, path and quote are document text: every form makes them inert first (no escape
sequences, control characters or bidi overrides; Markdown escaped where Markdown is shown).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialog.guard import strip_control
from dialog.messages import Reply, Source

Cited = Source | Mapping[str, Any]
"""A live `Source`, or a stored answer's source ref (`source`, `chunk_id`, `quote`?)."""
QUOTE_INDENT = "      "
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def escape_markdown(text: str) -> str:
    """Text with everything Markdown (or HTML) would act on escaped, so it reads as written."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def plain_text(text: str) -> str:
    """Document or model text without escape sequences, control characters or bidi overrides: it
    can neither steer a terminal nor reorder what a reader sees."""
    return _BIDI.sub("", "\n".join(strip_control(line) for line in text.split("\n")))


def quote_lines(quote: str) -> list[str]:
    """A quote's lines (a heading is kept with the sentence under it), plain, without blanks."""
    lines = (" ".join(line.split()) for line in plain_text(quote).splitlines())
    return [line for line in lines if line]


def quote_markdown(quote: str) -> str:
    """A passage's quote as a `> “…”` blockquote, one hard-broken line per line of it: document
    text, so it is made plain and its Markdown escaped to read verbatim; "" when there is none."""
    lines = [escape_markdown(line) for line in quote_lines(quote)]
    return "> “" + "  \n> ".join(lines) + "”" if lines else ""


def quote_plain(quote: str, indent: str = QUOTE_INDENT) -> str:
    """The quote in curly quotes, one indented line per line of it; "" when there is none."""
    lines = quote_lines(quote)
    return f"{indent}“" + f"\n{indent} ".join(lines) + "”" if lines else ""


@dataclass(frozen=True)
class Citation:
    """One numbered source under an answer, whichever form it is shown in.

    >>> Citation.of(1, Source("/docs/warranty.md", 2, 0.8, "…", "Warranty")).plain_heading()
    '[1] Warranty — /docs/warranty.md'
    """

    number: int
    source: str
    chunk_id: int
    title: str = ""
    quote: str = ""
    url: str = ""
    """Where a customer can open the document (a web page); empty: nowhere."""

    @classmethod
    def of(cls, number: int, cited: Cited) -> Citation:
        if isinstance(cited, Source):
            return cls(
                number, cited.source, cited.chunk_id, cited.title, cited.quote, _link(cited.url)
            )
        return cls(
            number,
            str(cited.get("source")),
            int(cited.get("chunk_id") or 0),
            str(cited.get("title") or ""),
            str(cited.get("quote") or ""),
            _link(str(cited.get("url") or "")),
        )

    @property
    def file(self) -> str:
        return self.source.rsplit("/", 1)[-1]

    def markdown(self) -> str:
        """`[n] Title — `file`` (or `[n] `file` (chunk c)` without a title; `[n] [Title](url)`
        when the document has a URL), its quote beneath."""
        if self.url:
            text = escape_markdown(plain_text(self.title or self.url))
            label = f"[{text}](<{self.url}>)"
        elif self.title:
            label = f"{self.title} — `{self.file}`"
        else:
            label = f"`{self.file}` (chunk {self.chunk_id})"
        quoted = quote_markdown(self.quote)
        return f"[{self.number}] {label}" + (f"\n{quoted}" if quoted else "")

    def plain_heading(self) -> str:
        """`[n] Title — /path/to/file` (or `[n] /path/to/file`; the URL instead of the path when
        the document has one), inert."""
        where, title = plain_text(self.url or self.source), plain_text(self.title)
        return f"[{self.number}] {title} — {where}" if title else f"[{self.number}] {where}"

    def plain_quote(self, indent: str = QUOTE_INDENT) -> str:
        return quote_plain(self.quote, indent)


def _link(url: str) -> str:
    """A URL a citation may link to: http(s) only, nothing that could end the Markdown link or
    steer a terminal."""
    url = url.strip()
    unsafe = any(c in url for c in "<>\"'`\\ ") or any(ord(c) < 32 or ord(c) == 127 for c in url)
    return url if url.startswith(("http://", "https://")) and not unsafe else ""


def cite(sources: Sequence[Cited]) -> list[Citation]:
    """The sources numbered from 1, as the answer's text refers to them."""
    return [Citation.of(number, cited) for number, cited in enumerate(sources, start=1)]


def citations_markdown(sources: Sequence[Cited], *, indent: str = "") -> str:
    """Every citation with its quote, a blank line between them (which also ends each quote)."""
    blocks = (c.markdown() for c in cite(sources))
    return "\n\n".join("\n".join(indent + line for line in b.split("\n")) for b in blocks)


def answer_markdown(answer: str, sources: Sequence[Cited]) -> str:
    """An answer as the web chat shows it: the text, then its sources under a heading."""
    listed = citations_markdown(sources)
    return f"{answer}\n\n**Sources**\n\n{listed}" if listed else answer


def citations_plain(sources: Sequence[Cited], *, indent: str = "  ") -> list[tuple[str, str]]:
    """(heading, quote) per citation, inert, for a terminal; the quote is "" when there is none."""
    return [(indent + c.plain_heading(), c.plain_quote()) for c in cite(sources)]


def sources_json(sources: Sequence[Source]) -> list[dict[str, object]]:
    """The REST/SSE `sources[]`: each with its quote once the answer has settled."""
    return [s.as_json() for s in sources]


def reply_json(reply: Reply) -> dict[str, object]:
    """The REST reply and the SSE `done` event."""
    return {**reply.as_json(), "handoff": reply.handoff}
