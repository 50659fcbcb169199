"""The terminal chat: a prompt, streamed answers, sources after each answer."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.markup import escape

from assistant.wiring import Components
from dialog.guard import strip_control
from dialog.messages import Message, new_conversation_id

PROMPT = "you> "
QUIT = {"/quit", "/exit", "/q"}


def safe_for_terminal(text: str) -> str:
    """Model output and documents never get to move the cursor or retitle the window."""
    return "\n".join(strip_control(line) for line in text.split("\n"))


def line_reader(console: Console) -> Callable[[], str | None]:
    """prompt_toolkit with history on a real terminal; plain lines from a pipe."""
    if sys.stdin.isatty():
        from prompt_toolkit import PromptSession

        session: PromptSession[str] = PromptSession()

        def read_tty() -> str | None:
            try:
                return session.prompt(PROMPT)
            except EOFError:
                return None

        return read_tty

    def read_pipe() -> str | None:
        console.print(PROMPT, end="")
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    return read_pipe


class TerminalChat:
    """Reads lines, hands each to the dialog manager, prints the answer as it streams.

    >>> TerminalChat(Components(load_settings())).run()
    """

    def __init__(self, components: Components, *, conversation_id: str | None = None) -> None:
        self.components = components
        self.conversation_id = conversation_id or new_conversation_id()
        self.console = Console(highlight=False, soft_wrap=True)

    def run(self) -> None:
        with self.console.status("loading the knowledge base and the language model…"):
            assistant = self.components.assistant
            documents, chunks = self.components.knowledge.count()
            _ = self.components.chat_model
        if chunks == 0:
            self.console.print("[yellow]The knowledge base is empty: run `assistant ingest --demo` or ingest your documents.[/]")
        self.console.print(f"[dim]{documents} documents, {chunks} passages. Conversation {self.conversation_id}. /quit to leave.[/]")
        read = line_reader(self.console)
        while (line := read()) is not None:
            if line.strip() in QUIT:
                break
            if not line.strip():
                continue
            turn = assistant.start(Message(line, self.conversation_id, channel="terminal"))
            self._print_stream(iter(turn))
            for number, source in enumerate(turn.reply.sources, start=1):
                self.console.print(f"[dim]  [{number}] {escape(source.title)} — {escape(source.source)}[/]")

    def _print_stream(self, deltas: Iterator[str]) -> None:
        self.console.print("[bold cyan]assistant>[/] ", end="")
        for delta in deltas:
            self.console.out(safe_for_terminal(delta), end="", highlight=False)
        self.console.print()
