"""Tools into prompts, tool calls out of text, grammar schemas for forced calls."""

from __future__ import annotations

import json

import pytest

from assistant.llm.server.prompts import forced_tool_schema, parse_tool_calls, plain_messages
from assistant.llm.server.schemas import BadRequest

pytestmark = pytest.mark.unit

TOOLS = [
    {"type": "function", "function": {"name": "order_status", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "refund", "parameters": {"type": "object"}}},
]


def test_tools_go_into_the_system_message_for_templates_without_tools() -> None:
    out = plain_messages(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], TOOLS
    )
    assert out[0]["role"] == "system" and out[0]["content"].startswith("Be brief.")
    assert '"order_status"' in out[0]["content"] and "<tool_call>" in out[0]["content"]


def test_earlier_calls_and_results_are_flattened_to_text() -> None:
    history = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "refund", "arguments": '{"id": 7}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    out = plain_messages(history, None)
    assert out[0]["content"] == '<tool_call>{"name": "refund", "arguments": {"id": 7}}</tool_call>'
    assert out[1] == {"role": "user", "content": "<tool_response>done</tool_response>"}


def test_only_known_tools_are_parsed_as_calls() -> None:
    text = (
        '<tool_call>{"name": "refund", "arguments": {"id": 7}}</tool_call>'
        '<tool_call>{"name": "rm", "arguments": {}}</tool_call>'
    )
    calls = parse_tool_calls(text, TOOLS)
    assert [c["function"]["name"] for c in calls] == ["refund"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"id": 7}
    assert parse_tool_calls("The refund is on its way.", TOOLS) == []


def test_forced_schema_names_one_or_any_tool() -> None:
    one = forced_tool_schema(TOOLS, {"type": "function", "function": {"name": "refund"}})
    assert one["properties"]["name"] == {"const": "refund"}
    assert len(forced_tool_schema(TOOLS, "required")["anyOf"]) == 2
    with pytest.raises(BadRequest, match="unknown function"):
        forced_tool_schema(TOOLS, {"type": "function", "function": {"name": "nope"}})
