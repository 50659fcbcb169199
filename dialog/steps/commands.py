"""Slash commands: record which one ran and return what its handler decided."""

from __future__ import annotations

from dataclasses import replace

from dialog import events as ev
from dialog.commands import CommandContext, CommandError, CommandRegistry, Outcome
from dialog.steps.services import Services
from dialog.turnwork import TurnWork


def run_command(services: Services, work: TurnWork) -> Outcome:
    """Parse the command and run it; a bad one gets its usage as the reply."""
    try:
        command, args = services.commands.parse(work.text)
    except CommandError as err:
        return Outcome(str(err))
    outcome = command.handler(CommandContext(services, work), args)
    ran = ev.CommandRun(command.name, args.model_dump())
    return replace(outcome, events=[ran, *outcome.events])


def allowed_in_handoff(commands: CommandRegistry, text: str) -> bool:
    """Whether the message is a command that runs while a person has the conversation."""
    if not text.startswith("/"):
        return False
    command = commands.get(text[1:].split(maxsplit=1)[0].lower() if len(text) > 1 else "")
    return command is not None and command.allowed_in_handoff
