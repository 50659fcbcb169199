"""Runs the terminal chat over fakes, for the pseudo-terminal test:
`python terminal_worker.py [ID]`."""

from __future__ import annotations

import sys
from pathlib import Path

from assistant.wiring import Components
from assistant_core.settings import Settings
from tests.fakes import FakeChatModel, HashingEmbedder
from tests.ui.conftest import write_docs
from ui.terminal import TerminalChat

# Grounded, so the grounding check lets it through, with escapes in it. The titles are set with
# xterm's digit-free `ESC ] l` / `ESC ] L`: the check reads OSC 0's or 52's digits as facts.
HOSTILE = (
    "**Blenders** have a two year warranty.\x1b]lpwned-title\x07 "
    "\x1b]Lpwned-icon\x1b\\Keep the \x1b[31mreceipt\x1b[0m.\u202e"
)


def main() -> None:
    settings = Settings()
    resuming = len(sys.argv) > 1
    model = FakeChatModel().enqueue("Points expire after eighteen months." if resuming else HOSTILE)
    components = Components(settings, {"chat_model": model, "embedder": HashingEmbedder()})
    if not resuming:
        components.knowledge.ingest([write_docs(Path(settings.data_dir) / "docs")])
    TerminalChat(components, conversation_id=sys.argv[1] if resuming else None).run()
    components.close()


if __name__ == "__main__":
    main()
