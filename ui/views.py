"""What every front end shows of a conversation: its events, its state, an export, as plain data."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dialog.events import Event
from dialog.guard import strip_control
from dialog.messages import Source
from dialog.state import ConversationState


def jsonable(value: Any) -> Any:
    """Dataclasses, paths and the like turned into JSON-ready values."""
    return json.loads(json.dumps(value, default=_default, ensure_ascii=False))


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def event_json(event: Event) -> dict[str, Any]:
    return {"type": event.type, **jsonable(event.payload())}


def state_json(state: ConversationState) -> dict[str, Any]:
    """The state with each slot's provenance (turn, span, extractor, confidence)."""
    return jsonable(dataclasses.asdict(state))


def export_markdown(conversation_id: str, events: list[Event]) -> str:
    """A readable transcript: who said what, with the sources of each answer and their quotes."""
    lines = [f"# Conversation {conversation_id}", ""]
    for event in events:
        payload = event.payload()
        text = payload.get("text")
        if event.type == "user":
            lines += [f"**Customer:** {text}", ""]
        elif event.type == "bot":
            lines += [f"**Assistant:** {text}", ""]
            for number, source in enumerate(payload.get("sources") or [], start=1):
                lines.append(
                    f"  [{number}] {source.get('source')} (chunk {source.get('chunk_id')})"
                )
                if quote := quote_markdown(str(source.get("quote") or "")):
                    lines += [f"  {line}" for line in quote.split("\n")]
                    lines.append("")  # the blank line ends the blockquote
            lines.append("")
        else:
            lines += [f"_{event.type}_: {json.dumps(jsonable(payload), ensure_ascii=False)}", ""]
    return "\n".join(lines)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


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
    lines = [_MARKDOWN_SPECIAL.sub(r"\\\1", line) for line in quote_lines(quote)]
    return "> “" + "  \n> ".join(lines) + "”" if lines else ""


def sources_markdown(sources: Sequence[Source]) -> str:
    """`[1] Title — file` entries shown under an answer, each with its quote (the evidence)
    beneath."""
    return "\n\n".join(
        _entry(number, f"{source.title or source.source} — `{_file(source.source)}`", source.quote)
        for number, source in enumerate(sources, start=1)
    )


def refs_markdown(refs: Sequence[Mapping[str, Any]]) -> str:
    """The same entries from a stored answer's source refs (`source`, `chunk_id`, `quote`?)."""
    return "\n\n".join(
        _entry(
            number,
            f"`{_file(str(ref.get('source')))}` (chunk {ref.get('chunk_id')})",
            str(ref.get("quote") or ""),
        )
        for number, ref in enumerate(refs, start=1)
    )


def _entry(number: int, label: str, quote: str) -> str:
    quoted = quote_markdown(quote)
    return f"[{number}] {label}" + (f"\n{quoted}" if quoted else "")


def _file(path: str) -> str:
    return path.rsplit("/", 1)[-1]
