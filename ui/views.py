"""What every front end shows of a conversation: its events, its state, an export, as plain data."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from dialog.events import Event
from dialog.state import ConversationState
from ui.channel.citations import citations_markdown


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
            if cited := citations_markdown(payload.get("sources") or [], indent="  "):
                lines += [cited, ""]
        else:
            lines += [f"_{event.type}_: {json.dumps(jsonable(payload), ensure_ascii=False)}", ""]
    return "\n".join(lines)


NO_CONVERSATION = "_No conversation yet._"


def state_markdown(state: ConversationState | None) -> str:
    """The state panel both web pages show: turns, handoff, slots with where each came from, the
    last answer's sources."""
    if state is None:
        return NO_CONVERSATION
    data = state_json(state)
    lines = [f"- **Turns:** {data.get('turns', 0)}"]
    if data.get("handoff"):
        reason = data.get("handoff_reason") or ""
        lines.append(f"- **Handoff:** with a human{f' ({reason})' if reason else ''}")
    else:
        lines.append("- **Handoff:** no, the assistant is answering")
    lines += _slot_lines(data.get("slots") or {})
    if sources := data.get("last_sources") or []:
        lines += ["", "**Last answer's sources:**", "", citations_markdown(sources)]
    return "\n".join(lines)


def _slot_lines(slots: dict[str, Any]) -> list[str]:
    if not slots:
        return ["- **Slots:** none yet"]
    lines = ["", "| slot | value | from | extractor | confidence |", "|---|---|---|---|---|"]
    for name, slot in slots.items():
        origin = f"turn {slot.get('turn')}: “{slot.get('span', '')}”"
        lines.append(
            f"| {name} | {slot.get('value')} | {origin} | {slot.get('extractor', '')} "
            f"| {slot.get('confidence', '')} |"
        )
    return lines
