"""What the assistant can do: the domain's forms and the registered tools, in one list to route
to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialog.domain import Domain
from dialog.errors import DialogError
from dialog.tools import Tool, ToolRegistry


@dataclass(frozen=True)
class Action:
    """Something the assistant can do: fill `slots`, then run `tool` (a form, or a tool on its
    own)."""

    name: str
    description: str
    slots: list[str]
    tool: Tool
    triggers: list[str] = field(default_factory=list)
    done: str = ""

    def spec(self) -> dict[str, Any]:
        """The function-calling spec the LM chooses from."""
        spec = self.tool.spec()
        spec["function"] = {**spec["function"], "name": self.name, "description": self.description}
        return spec


def build_actions(domain: Domain, tools: ToolRegistry) -> dict[str, Action]:
    """One action per form, and one per tool that no form submits to."""
    actions: dict[str, Action] = {}
    for name, form in domain.forms.items():
        tool = tools.get(form.submit)
        if tool is None:
            raise DialogError(
                f"form {name!r} submits to {form.submit!r}, which is not a registered tool"
            )
        actions[name] = Action(
            name, form.description, list(form.slots), tool, form.triggers, form.done
        )
    submits = {form.submit for form in domain.forms.values()}
    for tool in tools:
        if tool.name in submits:
            continue  # reached through its form, which collects and checks its arguments
        hints = domain.tools.get(tool.name)
        triggers = hints.triggers if hints else []
        actions.setdefault(
            tool.name, Action(tool.name, tool.description, tool.required(), tool, triggers)
        )
    return actions
