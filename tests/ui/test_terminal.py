"""The terminal chat under a pseudo-terminal: completion, Markdown stream, sources, history, resume,
no escapes."""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pytest

from ui.terminal import safe_for_terminal

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed for the pseudo-terminal test")
pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("terminal_worker.py")
PROMPT = "you>"
BANNER = "/quit to leave."


def _spawn(*args: str) -> tuple[pexpect.spawn, io.StringIO]:
    """The chat over fakes in a pseudo-terminal; everything it writes is kept in the transcript."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TERM": "xterm-256color",
        "COLUMNS": "100",
        "LINES": "40",
    }
    child = pexpect.spawn(
        sys.executable,
        [str(WORKER), *args],
        env=env,
        dimensions=(40, 100),
        encoding="utf-8",
        timeout=60,
    )
    transcript = io.StringIO()
    child.logfile_read = transcript
    child.expect_exact(BANNER)
    return child, transcript


def test_safe_for_terminal_strips_escapes_controls_and_bidi() -> None:
    text = "a\x1b]0;title\x07b\x1b[2Jc\x07d\x9be\u202ef\r\ng"
    assert safe_for_terminal(text) == "abcdef\ng"


def test_chat_in_a_pseudo_terminal(data_dir: Path) -> None:
    child, transcript = _spawn()
    banner = child.before
    child.expect_exact(PROMPT)
    conversation_id = re.search(r"Conversation ([0-9a-f]{32})", banner).group(1)  # type: ignore[union-attr]

    child.send("/he")
    child.send("\t")
    child.expect_exact("/help")
    child.send("\x15")  # Ctrl-U: clear the line

    child.sendline("How long is the warranty on blenders?")
    child.expect("Keep the")
    child.expect("warranty.md")
    child.expect("lasts two years from delivery\\.”")  # the evidence, quoted
    child.expect_exact(PROMPT)
    answer = transcript.getvalue()
    assert "two year warranty" in answer
    assert "**Blenders**" not in answer, "Markdown is rendered, not shown raw"
    for leaked in ("pwned-title", "pwned-icon", "\x1b]", "\x1b[31m", "\u202e"):
        assert leaked not in answer
    assert "Blender warranty" in answer

    child.send("\x1b[A")  # ↑ recalls the last line from history
    child.expect_exact("How long is the warranty on blenders?")
    child.send("\x15")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "How long is the warranty on blenders?" in (data_dir / "chat_history").read_text()

    resumed, again = _spawn(conversation_id)
    resumed.expect_exact("earlier in this conversation")
    resumed.expect_exact("two year warranty")
    resumed.expect_exact(PROMPT)
    earlier = again.getvalue()
    assert "earlier in this conversation" in earlier and "two year warranty" in earlier
    assert "pwned-title" not in earlier and "\x1b]" not in earlier
    resumed.sendline("When do loyalty points expire?")
    resumed.expect("eighteen months")
    resumed.expect("loyalty.md")
    resumed.expect_exact(PROMPT)
    resumed.sendeof()
    resumed.expect(pexpect.EOF)
