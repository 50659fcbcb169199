"""`assistant ask`: one turn, non-interactive; `--json` is the scripting interface."""

from __future__ import annotations

import json

import click

from assistant.cli.app import App, friendly_errors, pass_app
from dialog.messages import Message, new_conversation_id


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
    from ui.terminal import terminal_quote

    with friendly_errors():
        assistant = app.components.assistant
        message = Message(question, conversation_id or new_conversation_id(), channel="cli")
        if as_json:
            click.echo(json.dumps(assistant.handle(message).as_json(), ensure_ascii=False))
            return
        turn = assistant.start(message)
        for delta in turn:
            click.echo(delta, nl=False)
        click.echo()
        for number, source in enumerate(turn.reply.sources, start=1):
            click.echo(f"  [{number}] {source.title} ({source.source})", err=True)
            if quote := terminal_quote(source.quote):  # the evidence, under its source
                click.echo(quote, err=True)
        click.echo(f"conversation: {turn.conversation_id}", err=True)
