"""`assistant chat`: the terminal chat."""

from __future__ import annotations

import click

from assistant.cli.app import App, friendly_errors, pass_app


@click.command()
@click.option("--conversation", "conversation_id", help="Resume this conversation.")
@pass_app
def chat(app: App, conversation_id: str | None) -> None:
    """Chat in the terminal; answers stream with their sources. Ctrl-D or /quit to leave."""
    from ui.terminal import TerminalChat

    with friendly_errors():
        TerminalChat(app.components, conversation_id=conversation_id).run()
