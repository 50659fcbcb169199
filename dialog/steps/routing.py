"""Routing a message to an action: domain triggers first (cheap, exact), then the LM.

The LM chooses by native function calling, or, on a server without tools (the in-process engine),
by naming an action under a JSON-schema enum.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant_core.chat_model import ToolCall
from assistant_core.errors import LLMError, LLMOverloaded, LLMTimeout, LLMUnavailable
from dialog import events as ev
from dialog.steps.services import Services
from dialog.tools import ToolError, parse_arguments
from dialog.turnwork import TurnWork

ROUTER_PROMPT = (
    "You are the router of a customer-support assistant. If the customer asks for one of the "
    "tools, call it with the arguments from the message. Otherwise do not call a tool."
)


@dataclass(frozen=True)
class Route:
    """The action chosen, the arguments the LM gave it, and who chose (a trigger, the LM)."""

    action: str
    arguments: dict[str, Any]
    chosen_by: str


class Router:
    """Routes messages; remembers whether the LM server does function calling once it has
    answered."""

    def __init__(self) -> None:
        self.native_tools: bool | None = None

    def route(self, services: Services, work: TurnWork, found: list[str]) -> Route | None:
        """The action the message asks for, or None (answer it from the knowledge base)."""
        actions = services.actions
        for action in actions.values():
            if any(re.search(t, work.text, re.I) for t in action.triggers):
                return Route(action.name, {}, "rule:trigger")
        if not actions or not services.options.route_with_model:
            return None
        if services.options.route_requires_slot and not any(
            set(a.slots) & set(found) for a in actions.values()
        ):
            return None
        if self.native_tools is not False:
            try:
                completion = services.model.complete(
                    [
                        {"role": "system", "content": ROUTER_PROMPT},
                        {"role": "user", "content": work.text},
                    ],
                    max_tokens=128,
                    tools=[a.spec() for a in actions.values()],
                )
            except (LLMUnavailable, LLMTimeout, LLMOverloaded):
                return None  # the server is in trouble: answer (the answer path reports it)
            except LLMError:
                self.native_tools = False  # it answered, but cannot call tools
            else:
                self.native_tools = True
                return _from_call(services, work, completion.tool_calls)
        return _with_json(services, work, found)


def _from_call(services: Services, work: TurnWork, calls: Sequence[ToolCall]) -> Route | None:
    """The first tool call, if it names an action and its arguments parse; else it is rejected."""
    if not calls:
        return None
    call = calls[0]
    if call.name not in services.actions:
        work.add(ev.ToolRejected(call.name, "not a registered tool"))
        return None
    try:
        arguments = parse_arguments(call.arguments)
    except ToolError as err:
        work.add(ev.ToolRejected(call.name, str(err)))
        return None
    return Route(call.name, arguments, "lm:function_call")


def _with_json(services: Services, work: TurnWork, found: list[str]) -> Route | None:
    """A server without tools: pick an action name under a JSON-schema enum.

    A small model picks a tool for almost anything, so its choice counts only when the message
    carries one of that action's slots (an order id for order status, say).
    """
    actions = services.actions
    listing = "\n".join(f"- {n}: {a.description}" for n, a in actions.items())
    schema = {
        "type": "object",
        "properties": {"action": {"type": "string", "enum": [*actions, "answer_question"]}},
        "required": ["action"],
        "additionalProperties": False,
    }
    messages = [
        {
            "role": "system",
            "content": (
                f"Pick the action that fits the customer's message.\n{listing}\n"
                "- answer_question: anything else"
            ),
        },
        {"role": "user", "content": work.text},
    ]
    try:
        completion = services.model.complete(
            messages,
            max_tokens=24,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "route", "schema": schema},
            },
        )
        choice = json.loads(completion.text).get("action")
    except (LLMError, ValueError, AttributeError):
        return None
    action = actions.get(choice or "")
    if action is None or not set(action.slots) & set(found):
        return None
    return Route(action.name, {}, "lm:json")
