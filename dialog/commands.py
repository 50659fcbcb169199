"""Slash commands: small handlers with a typed argument model that return an Outcome (reply +
events).

>>> commands = CommandRegistry()
>>> class TranslateArgs(BaseModel):
...     language: str
>>> @commands.command("translate", "Translate the last answer", args=TranslateArgs)
... def translate(ctx: CommandContext, args: TranslateArgs) -> Outcome: ...
>>> commands.parse("/translate French")[1].language
'French'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from dialog.errors import DialogError
from dialog.events import Event
from dialog.messages import Grounding, Source

if TYPE_CHECKING:
    from dialog.steps.services import Services
    from dialog.turnwork import TurnWork


@dataclass
class Outcome:
    """What a step of the turn decided: the reply text and the events that record it."""

    text: str
    sources: list[Source] = field(default_factory=list)
    handoff: bool = False
    erase: bool = False
    asks: bool = False
    """The reply asks the user something (so no other offer is tacked on)."""
    grounding: Grounding | None = None
    """Set when the step answered (or declined to answer) a question from the documents."""
    events: list[Event] = field(default_factory=list)
    """What the step did, as events: the manager adds them to the turn, in order, after it."""


@dataclass(frozen=True)
class CommandContext:
    """What a command handler reads: the assistant's parts and this turn's work so far; it returns
    its events in its Outcome and never changes the work."""

    assistant: Services
    work: TurnWork


class NoArgs(BaseModel):
    """A command without arguments."""


Handler = Callable[[CommandContext, Any], Outcome]
"""Any: each handler takes its own argument model, which a narrower parameter type would refuse."""


class CommandError(DialogError):
    """Unknown command or bad arguments; the message (with usage) is the reply."""


@dataclass(frozen=True)
class Command:
    """A registered slash command."""

    name: str
    help: str
    args: type[BaseModel]
    handler: Handler
    allowed_in_handoff: bool = False

    @property
    def usage(self) -> str:
        names = " ".join(
            f"{n.upper()}" if f.is_required() else f"[{n.upper()}]"
            for n, f in self.args.model_fields.items()
        )
        return f"/{self.name} {names}".rstrip()

    def parse(self, rest: str) -> BaseModel:
        """Positional words fill the argument fields in order; the last field takes the rest of the
        line."""
        names = list(self.args.model_fields)
        words = rest.split(maxsplit=max(len(names) - 1, 0)) if names else rest.split()
        if len(words) > len(names):
            raise CommandError(f"/{self.name} takes no arguments. Usage: {self.usage}")
        try:
            return self.args.model_validate(dict(zip(names, words, strict=False)))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise CommandError(f"{problems}. Usage: {self.usage}") from err


class CommandRegistry:
    """Commands by name; `parse("/name args")` finds one and validates its arguments."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def command(
        self,
        name: str,
        help: str,
        *,
        args: type[BaseModel] = NoArgs,
        allowed_in_handoff: bool = False,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.register(Command(name, help, args, handler, allowed_in_handoff))
            return handler

        return decorate

    def register(self, command: Command) -> None:
        if command.name in self._commands:
            raise DialogError(f"command /{command.name} is already registered")
        self._commands[command.name] = command

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def parse(self, text: str) -> tuple[Command, BaseModel]:
        head, _, rest = text.strip().partition(" ")
        name = head.lstrip("/").lower()
        command = self._commands.get(name)
        if command is None:
            known = ", ".join(f"/{c}" for c in self._commands)
            raise CommandError(f"Unknown command /{name}. Commands: {known}.")
        return command, command.parse(rest.strip())
