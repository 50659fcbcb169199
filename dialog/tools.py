"""Tools: Python functions with a pydantic argument model that the LM may call; only registered ones
run.

>>> tools = ToolRegistry()
>>> class StatusArgs(BaseModel):
...     order_id: str
>>> @tools.tool(description="Look up an order's status")
... def order_status(args: StatusArgs, ctx: ToolContext) -> dict:
...     return {"message": f"{args.order_id} has shipped"}
>>> tools.specs()[0]["function"]["name"]
'order_status'
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from dialog.errors import DialogError

ToolFunction = Callable[[Any, "ToolContext"], dict[str, Any]]


class ToolError(DialogError):
    """A tool could not do what was asked; its message is shown to the user."""


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use: the conversation it runs for and the database."""

    conversation_id: str
    sessions: sessionmaker[Session] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    """A registered tool; `side_effects` ones run only after the user confirms."""

    name: str
    description: str
    args: type[BaseModel]
    function: ToolFunction
    side_effects: bool = False
    confirm: str = ""

    def spec(self) -> dict[str, Any]:
        """The OpenAI `tools[]` entry."""
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }

    def required(self) -> list[str]:
        """Argument names without a default: the slots that must be filled before it runs."""
        return [name for name, info in self.args.model_fields.items() if info.is_required()]

    def fields(self) -> list[str]:
        return list(self.args.model_fields)

    def validate(self, arguments: dict[str, Any]) -> BaseModel:
        return self.args.model_validate(arguments)

    def run(self, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        """Validate and call; a ToolError or invalid arguments come back as `{"error": ...}` by the
        caller."""
        return self.function(self.validate(arguments), context)


class ToolRegistry:
    """The tools the assistant may run, by name."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise DialogError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def tool(
        self,
        *,
        name: str | None = None,
        description: str = "",
        side_effects: bool = False,
        confirm: str = "",
        args: type[BaseModel] | None = None,
    ) -> Callable[[ToolFunction], ToolFunction]:
        """Decorator: the argument model is `args`, else the annotation of the function's first
        parameter."""

        def decorate(function: ToolFunction) -> ToolFunction:
            model = args or _first_annotation(function)
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise DialogError(
                    f"tool {function.__name__}: first parameter must be a pydantic model"
                )
            doc = description or (inspect.getdoc(function) or "").split("\n")[0]
            self.register(
                Tool(name or function.__name__, doc, model, function, side_effects, confirm)
            )
            return function

        return decorate

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self._tools.values()]


def _first_annotation(function: ToolFunction) -> object:
    parameters = list(inspect.signature(function).parameters)
    if not parameters:
        return None
    try:
        return get_type_hints(function).get(parameters[0])
    except NameError as err:  # a model defined where the annotation cannot be resolved: pass args=
        raise DialogError(
            f"tool {function.__name__}: cannot resolve its argument model ({err}); pass args="
        ) from err


def parse_arguments(raw: str) -> dict[str, Any]:
    """The model's JSON arguments as a dict; anything else is a ToolError."""
    try:
        value = json.loads(raw or "{}")
    except ValueError as err:
        raise ToolError(f"arguments are not JSON: {err}") from err
    if not isinstance(value, dict):
        raise ToolError("arguments must be a JSON object")
    return value


def describe_validation(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())


def load_tools(reference: str) -> ToolRegistry:
    """Import `package.module:function` (or `path/to/file.py:function`, as `assistant init`
    writes it) and call it for a ToolRegistry (the `ASSISTANT_TOOLS` setting)."""
    import importlib

    module_name, _, attribute = reference.rpartition(":")
    try:
        module = (
            _module_from_file(Path(module_name))
            if module_name.endswith(".py")
            else importlib.import_module(module_name)
        )
        factory = getattr(module, attribute)
    except (ImportError, AttributeError, OSError) as err:
        raise DialogError(f"ASSISTANT_TOOLS: cannot load {reference!r}: {err}") from err
    registry = factory()
    if not isinstance(registry, ToolRegistry):
        raise DialogError(
            f"ASSISTANT_TOOLS: {reference!r} returned {type(registry).__name__}, not a ToolRegistry"
        )
    return registry


def _module_from_file(path: Path) -> Any:
    """A tools file of a project folder, which is not an importable package."""
    import importlib.util

    if not path.is_file():
        raise OSError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"assistant_tools_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
