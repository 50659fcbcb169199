"""What every front end shows of a conversation: its events, its state, an export, as plain data."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from dialog.events import Event
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
    """A readable transcript: who said what, with the sources of each answer."""
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
            lines.append("")
        else:
            lines += [f"_{event.type}_: {json.dumps(jsonable(payload), ensure_ascii=False)}", ""]
    return "\n".join(lines)


def sources_markdown(sources: list[Source]) -> str:
    """`[1] Title — file` lines shown under an answer."""
    if not sources:
        return ""
    return "\n".join(
        f"[{number}] {source.title or source.source} — `{source.source.rsplit('/', 1)[-1]}`"
        for number, source in enumerate(sources, start=1)
    )
