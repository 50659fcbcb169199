"""The terminal chat: a prompt with slash-command completion and history, answers streamed as
Markdown.

On a terminal, answers render as Markdown while they stream (rich.live) and the prompt completes
slash commands and keeps a history file; from a pipe, lines in and plain text out. Model output
and document text never reach the terminal with control characters or escape sequences in them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape

from dialog.messages import Message, Source, new_conversation_id
from ui.backend import Backend
from ui.views import plain_text, quote_lines

PROMPT = "you> "
QUIT = {"/quit", "/exit", "/q"}
LOCAL_COMMANDS = {"/quit": "Leave the chat", "/new": "Start a new conversation"}
FALLBACK_COMMANDS = {
    "/help": "List commands",
    "/reset": "Start over",
    "/state": "What the assistant knows",
    "/sources": "The last answer's passages",
    "/handoff": "Talk to a person",
}


def safe_for_terminal(text: str) -> str:
    """Model output and documents never get to move the cursor, retitle the window or reorder
    text."""
    return plain_text(text)


def slash_commands(assistant: Any) -> dict[str, str]:
    """`/name -> help` from the dialog manager's command registry, plus the terminal's own."""
    registry = getattr(assistant, "commands", None)
    found = (
        {f"/{c.name}": c.help for c in registry}
        if registry is not None
        else dict(FALLBACK_COMMANDS)
    )
    return {**found, **LOCAL_COMMANDS}


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
    """Reads lines, hands each to the dialog manager, shows the answer as it streams, then its
    sources.

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

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and sys.stdin.isatty()

    def run(self) -> None:
        with self.console.status("loading the knowledge base and the language model…"):
            assistant = self.components.assistant
            documents, chunks = self.components.knowledge.count()
            _ = self.components.chat_model
        if chunks == 0:
            self.console.print(
                "[yellow]The knowledge base is empty: run `assistant ingest --demo` or ingest "
                "your documents.[/]"
            )
        self.console.print(
            f"[dim]{documents} documents, {chunks} passages. Conversation {self.conversation_id}. "
            "Tab completes /commands, /quit to leave.[/]"
        )
        if self.resumed:
            self._replay(assistant)
        commands = slash_commands(assistant)
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
            turn = assistant.start(Message(line, self.conversation_id, channel="terminal"))
            try:
                self._show(iter(turn))
                sources = turn.reply.sources
            except KeyboardInterrupt:  # Ctrl-C stops this answer (recorded as failed), not the chat
                self.console.print("\n[dim](stopped)[/]")
                continue
            except Exception as err:  # stored as answer_failed by the turn; keep the chat going
                self.console.print(
                    f"\n[red]The answer failed ({escape(type(err).__name__)}). Please try again.[/]"
                )
                continue
            self._print_sources(sources)

    def _replay(self, assistant: Any, last: int = 6) -> None:
        """Show the end of a resumed conversation so the user knows where they are."""
        shown = [e for e in assistant.history(self.conversation_id) if e.type in ("user", "bot")][
            -last:
        ]
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

    def _show(self, deltas: Iterator[str]) -> None:
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
        for number, source in enumerate(sources, start=1):
            title, where = safe_for_terminal(source.title), safe_for_terminal(source.source)
            self.console.print(
                f"[dim]  [{number}] {escape(title)} — {escape(where)}[/]", emoji=False
            )
            if quote := terminal_quote(source.quote):
                self.console.print(f"[dim italic]{escape(quote)}[/]", emoji=False)


def terminal_quote(quote: str, indent: str = "      ") -> str:
    """The quote in curly quotes, one indented line per line of it, with nothing in it that could
    steer the terminal; "" when there is none."""
    lines = quote_lines(quote)
    return f"{indent}“" + f"\n{indent} ".join(lines) + "”" if lines else ""
