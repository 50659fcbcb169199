"""The terminal chat: a prompt with slash-command completion and history, answers streamed as
Markdown.

On a terminal, answers render as Markdown while they stream (rich.live) and the prompt completes
slash commands and keeps a history file; from a pipe, lines in and plain text out. Model output
and document text never reach the terminal with control characters or escape sequences in them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape

from dialog.errors import ConversationNotFound
from dialog.messages import Message, Source, new_conversation_id
from dialog.persona import Persona
from ui.backend import Backend
from ui.channel import LOCAL, Channel, Delta, DialogService, Done, Failed, TurnEvent
from ui.channel.citations import citations_plain, plain_text

PROMPT = "you> "
QUIT = {"/quit", "/exit", "/q"}
LOCAL_COMMANDS = {"/quit": "Leave the chat", "/new": "Start a new conversation"}


def safe_for_terminal(text: str) -> str:
    """Model output and documents never get to move the cursor, retitle the window or reorder
    text."""
    return plain_text(text)


def slash_commands(service: DialogService) -> dict[str, str]:
    """`/name -> help` from the dialog manager's command registry, plus the terminal's own."""
    return {**{f"/{c.name}": c.help for c in service.commands}, **LOCAL_COMMANDS}


def history_file(components: Backend) -> Path:
    return Path(components.settings.data_dir) / "chat_history"


def tty_reader(commands: dict[str, str], history: Path) -> Callable[[], str | None]:
    """prompt_toolkit: slash commands complete (Tab), ↑/↓ walk a history kept in the data dir."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.completion import Completer, Completion
    from prompt_toolkit.history import FileHistory

    class SlashCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterable[Completion]:
            text = document.text_before_cursor
            if not text.startswith("/") or " " in text:
                return
            for name, meta in commands.items():
                if name.startswith(text.lower()):
                    yield Completion(name, start_position=-len(text), display_meta=meta)

    history.parent.mkdir(parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history)),
        completer=SlashCompleter(),
        complete_while_typing=True,
        auto_suggest=AutoSuggestFromHistory(),
    )

    def read() -> str | None:
        try:
            return session.prompt(PROMPT)
        except EOFError:
            return None
        except KeyboardInterrupt:
            return ""

    return read


def pipe_reader(console: Console) -> Callable[[], str | None]:
    def read() -> str | None:
        console.print(PROMPT, end="")
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    return read


class TerminalChat:
    """Reads lines, runs each as a turn through the channel (as the local user), shows the answer
    as it streams, then its sources.

    >>> TerminalChat(Components(load_settings()), conversation_id="3f2a…").run()
    """

    def __init__(
        self,
        components: Backend,
        *,
        conversation_id: str | None = None,
        console: Console | None = None,
    ) -> None:
        self.components = components
        self.resumed = conversation_id is not None
        self.conversation_id = conversation_id or new_conversation_id()
        self.console = console or Console(highlight=False, soft_wrap=True)

    @cached_property
    def channel(self) -> Channel:
        return Channel(self.components)

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and sys.stdin.isatty()

    def run(self) -> None:
        with self.console.status("loading the knowledge base and the language model…"):
            service = self.channel.service
            documents, chunks = self.components.knowledge.count()
            _ = self.components.chat_model
        if chunks == 0:
            self.console.print(
                "[yellow]The knowledge base is empty: run `assistant ingest docs/` (your "
                "documents, or a website's URL), or `assistant ingest --demo`.[/]"
            )
        self.console.print(
            f"[dim]{documents} documents, {chunks} passages. Conversation {self.conversation_id}. "
            "Tab completes /commands, /quit to leave.[/]"
        )
        if self.resumed:
            self._replay()
        elif greeting := plain_text(getattr(self.components, "persona", Persona()).greeting):
            self.console.print(greeting, markup=False, highlight=False)
        commands = slash_commands(service)
        read = (
            tty_reader(commands, history_file(self.components))
            if self.interactive
            else pipe_reader(self.console)
        )
        while (line := read()) is not None:
            text = line.strip()
            if text in QUIT:
                break
            if not text:
                continue
            if text == "/new":
                self.conversation_id = new_conversation_id()
                self.console.print(f"[dim]New conversation {self.conversation_id}.[/]")
                continue
            self._turn(line)

    def _turn(self, line: str) -> None:
        """One turn: the answer as it streams, then its sources, or what went wrong."""
        events = self.channel.stream(LOCAL, Message(line, self.conversation_id, channel="terminal"))
        try:
            end = self._show(events)
        except KeyboardInterrupt:  # Ctrl-C stops this answer (recorded as failed), not the chat
            self.console.print("\n[dim](stopped)[/]")
            return
        finally:
            events.close()
        if isinstance(end, Failed):  # stored as answer_failed by the turn; keep the chat going
            self.console.print(f"\n[red]{escape(end.failure.sentence)}[/]")
            return
        self._print_sources(end.reply.sources)

    def _replay(self, last: int = 6) -> None:
        """Show the end of a resumed conversation so the user knows where they are."""
        try:
            events = self.channel.history(LOCAL, self.conversation_id)
        except ConversationNotFound:
            events = []
        shown = [e for e in events if e.type in ("user", "bot")][-last:]
        if not shown:
            self.console.print(
                f"[yellow]No messages in conversation {self.conversation_id} yet; starting it.[/]"
            )
            return
        self.console.print("[dim]… earlier in this conversation:[/]")
        for event in shown:
            text = safe_for_terminal(str(event.payload().get("text", "")))
            who = "you" if event.type == "user" else "assistant"
            self.console.print(f"[dim]{who}>[/] {escape(text)}")

    def _show(self, events: Iterator[TurnEvent]) -> Done | Failed:
        """Print the answer as its deltas come; returns how the turn ended."""
        ends: list[Done | Failed] = []

        def deltas() -> Iterator[str]:
            for event in events:
                if isinstance(event, Delta):
                    yield event.text
                elif isinstance(event, Done | Failed):
                    ends.append(event)

        self._print_stream(deltas())
        return ends[-1]

    def _print_stream(self, deltas: Iterator[str]) -> None:
        self.console.print("[bold cyan]assistant>[/] ", end="" if not self.interactive else "\n")
        if not self.interactive:
            for delta in deltas:
                self.console.out(safe_for_terminal(delta), end="", highlight=False)
            self.console.print()
            return
        parts: list[str] = []
        with Live(
            console=self.console, auto_refresh=False, vertical_overflow="visible", transient=False
        ) as live:
            for delta in deltas:
                parts.append(delta)
                live.update(
                    Markdown(safe_for_terminal("".join(parts)), hyperlinks=False), refresh=True
                )

    def _print_sources(self, sources: list[Source]) -> None:
        """`[n] Title — path` per source, its quote (the evidence) on the line below."""
        for heading, quote in citations_plain(sources):
            self.console.print(f"[dim]{escape(heading)}[/]", emoji=False)
            if quote:
                self.console.print(f"[dim italic]{escape(quote)}[/]", emoji=False)
