"""Messages and tools into prompt tokens through the model's chat template; tool calls back out of
text."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from assistant.llm.server.schemas import BadRequest

_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)

TOOLS_PREAMBLE = (
    "You can call functions. Their signatures are inside <tools></tools>:\n"
    "<tools>\n{tools}\n</tools>\n"
    'To call one, reply only with <tool_call>{{"name": <function name>, '
    '"arguments": <JSON object>}}</tool_call>.'
)


def text_of(content: Any) -> str:
    """OpenAI content is a string, None, or a list of parts; the template wants a string."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise BadRequest("only text content parts are supported", param="messages")
            if not isinstance(part.get("text"), str):
                raise BadRequest("a text content part needs a string `text`", param="messages")
            parts.append(part["text"])
        return "".join(parts)
    raise BadRequest("message content must be a string or a list of text parts")


def template_knows_tools(tokenizer: Any) -> bool:
    """Templates that render `tools` themselves get them; others get our Hermes-style preamble."""
    return "tools" in str(getattr(tokenizer, "chat_template", "") or "")


def plain_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[dict[str, str]]:
    """Flatten tool calls and tool results into text for templates that only know role + content."""
    out: list[dict[str, str]] = []
    for message in messages:
        role, text = message.get("role", "user"), text_of(message.get("content"))
        role = "system" if role == "developer" else role
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            payload = {
                "name": function.get("name"),
                "arguments": _arguments(function.get("arguments")),
            }
            text += f"<tool_call>{json.dumps(payload)}</tool_call>"
        if role == "tool":
            role, text = "user", f"<tool_response>{text}</tool_response>"
        out.append({"role": role, "content": text})
    if tools:
        preamble = TOOLS_PREAMBLE.format(tools="\n".join(json.dumps(t) for t in tools))
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + preamble}
        else:
            out.insert(0, {"role": "system", "content": preamble})
    return out


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def prompt_ids(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
) -> list[int]:
    """Token ids of the chat prompt, generation prompt included; a template that refuses the
    messages (role order, types) is the client's 400, not our 500."""
    try:
        if tools and template_knows_tools(tokenizer):
            texts = [dict(m, content=text_of(m.get("content"))) for m in messages]
            rendered = tokenizer.apply_chat_template(
                texts, tools=tools, add_generation_prompt=True, tokenize=False
            )
        else:
            rendered = tokenizer.apply_chat_template(
                plain_messages(messages, tools), add_generation_prompt=True, tokenize=False
            )
    except BadRequest:
        raise
    except Exception as err:  # jinja2's TemplateError, or what a template's raise_exception raises
        raise BadRequest(f"the chat template refused these messages: {err}") from err
    return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [t.get("function", {}).get("name", "") for t in tools if t.get("type") == "function"]


def forced_tool_schema(
    tools: list[dict[str, Any]], tool_choice: str | dict[str, Any]
) -> dict[str, Any]:
    """The JSON schema of a call to one of the allowed tools, for grammar-constrained `required`
    calls."""
    wanted = None
    if isinstance(tool_choice, dict):
        wanted = tool_choice.get("function", {}).get("name")
        if wanted not in tool_names(tools):
            raise BadRequest(f"tool_choice names an unknown function: {wanted!r}")
    options = []
    for tool in tools:
        function = tool.get("function", {})
        if wanted is not None and function.get("name") != wanted:
            continue
        parameters = function.get("parameters") or {"type": "object"}
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": function.get("name")}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def parse_tool_calls(text: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`<tool_call>{...}</tool_call>` blocks (or a bare call object) naming a known tool, as OpenAI
    tool_calls."""
    names = set(tool_names(tools))
    found = [m.group(1) for m in _TOOL_CALL.finditer(text)] or [text.strip()]
    calls = []
    for raw in found:
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(payload, dict) and payload.get("name") in names:
            arguments = payload.get("arguments", {})
            calls.append(
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": payload["name"], "arguments": json.dumps(arguments)},
                }
            )
    return calls
