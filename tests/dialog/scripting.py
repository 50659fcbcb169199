"""Conversation scripts: YAML files of user turns and what each must produce (events, slots, tool
calls).

A script:
    name: order status in plain words
    steps:
      - user: "where is my order 1042?"
        model: []        # scripted LM replies this step consumes (all of them, exactly)
        events: [user, slot, tool_call, tool_result, bot]
        tool_calls: [order_status]
        slots: {order_id: NW-1042}
        provenance: {order_id: {extractor: "rule:order_id", span: "order 1042"}}
        bot_contains: ["has shipped"]
        handoff: false
        grounding: passed  # the grounding check's action: passed, extractive, abstained, none
        unsupported: ["10%"]  # the facts it found unsupported
        quote: "…"  # the top-quoted source's quote contains this
        state: {active_form: null, pending: null}
      - hand_back: true  # or feedback: true/false, instead of `user`
Model replies: a string (text), {tool_calls: [{name, arguments}]}, {json: {...}}, {error: "..."}
(LLMError), {error_unavailable: "..."} (LLMUnavailable).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from assistant_core.chat_model import Completion, ToolCall
from assistant_core.errors import LLMError, LLMUnavailable
from dialog.manager import Assistant
from dialog.messages import Message
from tests.fakes import FakeChatModel

SCRIPTS = Path(__file__).parent / "scripts"


def load_scripts() -> list[dict[str, Any]]:
    scripts = []
    for path in sorted(SCRIPTS.glob("*.yaml")):
        for script in yaml.safe_load(path.read_text()):
            script["file"] = path.name
            scripts.append(script)
    return scripts


def model_reply(spec: Any) -> str | Completion | BaseException:
    if isinstance(spec, str):
        return spec
    if "tool_calls" in spec:
        calls = [
            ToolCall(
                f"call_{i}",
                c["name"],
                c["arguments"] if isinstance(c["arguments"], str) else json.dumps(c["arguments"]),
            )
            for i, c in enumerate(spec["tool_calls"])
        ]
        return Completion(text="", tool_calls=calls, finish_reason="tool_calls")
    if "json" in spec:
        return Completion(text=json.dumps(spec["json"]))
    if "error" in spec:
        return LLMError(spec["error"])
    if "error_unavailable" in spec:
        return LLMUnavailable(spec["error_unavailable"])
    raise ValueError(f"unknown model reply {spec!r}")


def run_script(
    assistant: Assistant, model: FakeChatModel, script: dict[str, Any], conversation_id: str = "c1"
) -> None:
    for number, step in enumerate(script["steps"], 1):
        where = f"{script['file']}: {script['name']}: step {number}"
        model.enqueue(*[model_reply(r) for r in step.get("model", [])])
        before = len(assistant.history(conversation_id))
        reply = None
        if "user" in step:
            reply = assistant.handle(
                Message(step["user"], conversation_id, channel=step.get("channel", "web"))
            )
        elif "hand_back" in step:
            assert assistant.hand_back(conversation_id) is step["hand_back"], where
        elif "feedback" in step:
            assistant.feedback(conversation_id, None, step["feedback"])
        check_step(assistant, model, step, reply, before, conversation_id, where)


def check_step(
    assistant: Assistant,
    model: FakeChatModel,
    step: dict[str, Any],
    reply: Any,
    before: int,
    conversation_id: str,
    where: str,
) -> None:
    assert not model.replies, f"{where}: scripted model replies left unused: {list(model.replies)}"
    history = assistant.history(conversation_id)
    new = history[before:] if "events_all" not in step else history
    if "events" in step:
        assert [e.type for e in new] == step["events"], f"{where}: events {[e.type for e in new]}"
    if "events_all" in step:
        assert [e.type for e in history] == step["events_all"], (
            f"{where}: events {[e.type for e in history]}"
        )
    if "tool_calls" in step:
        called = [e.name for e in new if e.type == "tool_call"]
        assert called == step["tool_calls"], f"{where}: tool calls {called}"
    state = assistant.state(conversation_id)
    for name, value in step.get("slots", {}).items():
        got = state.slot(name)
        assert got == value, f"{where}: slot {name} = {got!r}, expected {value!r}"
    for name, expected in step.get("provenance", {}).items():
        slot = state.slots[name]
        for key, value in expected.items():
            assert getattr(slot, key) == value, f"{where}: {name}.{key} = {getattr(slot, key)!r}"
    for key, value in step.get("state", {}).items():
        got = getattr(state, key)
        if key == "pending":
            got = got.kind if got else None
        assert got == value, f"{where}: state.{key} = {got!r}, expected {value!r}"
    if reply is not None:
        for text in _as_list(step.get("bot_contains")):
            assert text in reply.answer, f"{where}: {text!r} not in {reply.answer!r}"
        for text in _as_list(step.get("bot_lacks")):
            assert text not in reply.answer, f"{where}: {text!r} in {reply.answer!r}"
        if "bot" in step:
            assert reply.answer == step["bot"], f"{where}: answer {reply.answer!r}"
        if "handoff" in step:
            assert reply.handoff is step["handoff"], f"{where}: handoff {reply.handoff}"
        if "sources" in step:
            assert bool(reply.sources) is step["sources"], f"{where}: sources {reply.sources}"
        if "grounding" in step:
            got = reply.grounding.action
            assert got == step["grounding"], f"{where}: grounding {got} ({reply.grounding})"
        if "unsupported" in step:
            got = list(reply.grounding.unsupported)
            assert got == step["unsupported"], f"{where}: unsupported {got}"
        if "quote" in step:
            quotes = [s.quote for s in reply.sources if s.quote]
            assert any(step["quote"] in q for q in quotes), f"{where}: quotes {quotes}"
    if "prompt_contains" in step:
        prompt = json.dumps(model.requests[-1]["messages"])
        for text in _as_list(step["prompt_contains"]):
            assert text in prompt, f"{where}: {text!r} not in the last prompt"
    if "label" in step:
        user = next(e for e in reversed(new) if e.type == "user")
        assert (user.sentiment, user.urgency) == tuple(step["label"]), (
            f"{where}: label {user.sentiment, user.urgency}"
        )


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
