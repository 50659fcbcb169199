"""`assistant ask`: one turn, non-interactive; `--json` is the scripting interface."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from assistant.cli.app import App, friendly_errors, pass_app
from dialog.messages import Message, Reply, new_conversation_id

if TYPE_CHECKING:
    from ui.channel import TurnEvent


@click.command()
@click.argument("question")
@click.option(
    "--conversation",
    "conversation_id",
    help="Continue this conversation (id from an earlier answer).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"conversation_id", "answer", "sources"} as JSON.',
)
@pass_app
def ask(app: App, question: str, conversation_id: str | None, as_json: bool) -> None:
    """Ask one QUESTION and print the answer with its sources and their quotes."""
    from ui.channel import LOCAL, Channel
    from ui.channel.citations import citations_plain

    with friendly_errors():
        channel = Channel(app.components)
        message = Message(question, conversation_id or new_conversation_id(), channel="cli")
        reply = _answer(channel.stream(LOCAL, message), stream=not as_json)
        if as_json:
            click.echo(json.dumps(reply.as_json(), ensure_ascii=False))
            return
        for heading, quote in citations_plain(reply.sources):
            click.echo(heading, err=True)
            if quote:  # the evidence, under its source
                click.echo(quote, err=True)
        click.echo(f"conversation: {reply.conversation_id}", err=True)


def _answer(events: Iterator[TurnEvent], *, stream: bool) -> Reply:
    """The turn's reply, its text echoed as it streams; a failure is one clear line (exit 1)."""
    from ui.channel import Delta, Done, Failed

    for event in events:
        if isinstance(event, Delta) and stream:
            click.echo(event.text, nl=False)
        elif isinstance(event, Failed):
            raise click.ClickException(event.failure.sentence)
        elif isinstance(event, Done):
            if stream:
                click.echo()
            return event.reply
    raise AssertionError("a turn ends with Done or Failed")
